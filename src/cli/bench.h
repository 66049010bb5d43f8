/* The benchmarks behind `slm bench`: each prints a table for people, or one
 * JSON object per line with --json:
 *   {"bench":..., "impl":..., <shape fields>, "ms":..., "gflops" or "tok_s":...} */
#ifndef SLM_CLI_BENCH_H
#define SLM_CLI_BENCH_H

int bench_attention(int argc, char **argv);
int bench_gemm(int argc, char **argv);
int bench_train(int argc, char **argv);
int bench_generate(int argc, char **argv);
int bench_tokenize(int argc, char **argv);
int bench_isa(int argc, char **argv);
int bench_quant(int argc, char **argv);

#endif
