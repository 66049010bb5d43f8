/*
 * slm bench gemm — C = A·B in float32 (row-major, M×K times K×N) through
 * slm's own gemm_f32 (kernels/kernels.h: the path every GEMM of the model
 * takes, oneDNN or own kernels chosen by CPUID), and for comparison through
 * OpenBLAS cblas_sgemm and BLIS. The default sizes are the model's shapes
 * (GPT-2 124M at B·T = 256, 64, 4 and 1; the L6 C384 model at B·T = 2048).
 *
 * Both libraries export cblas_sgemm and sgemm_, so linking both into one
 * binary would let one silently replace the other. BLIS is therefore opened
 * at run time (dlopen, RTLD_LOCAL) and called through its native typed API
 * bli_sgemm, a name OpenBLAS does not have. No BLIS installed: a line says so.
 *
 * Each size: one untimed warm-up call (page faults, thread start), then
 * --repeat timed calls (default: at least 2 and until 0.5 s); the best is
 * reported, GFLOP/s = 2·M·N·K / time.
 */
#include "cli/bench.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "core/alloc.h"
#include "core/cpu.h"
#include "kernels/kernels.h"

#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* LeakSanitizer's exit-time scan crashes ("Tracer caught signal 11") once a
 * dlopen'ed BLIS has run on more than one thread, so sanitizer builds time
 * OpenBLAS only. */
#if defined(__SANITIZE_ADDRESS__)
#define BLIS_USABLE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BLIS_USABLE 0
#endif
#endif
#ifndef BLIS_USABLE
#define BLIS_USABLE 1
#endif

#define MAX_SIZES 24
#define MAX_DIM 65536

static const char *help =
    "usage: slm bench gemm [--json] [--bf16] [--threads N] [--size N|MxNxK]... [--repeat R]\n\n"
    "Times C = A·B (float32, row-major) through slm's gemm_f32 (the kernels the\n"
    "model runs: the CPU level and library are printed), OpenBLAS cblas_sgemm\n"
    "and, when it is installed, BLIS bli_sgemm (loaded at run time). Prints the\n"
    "OpenBLAS kernel (OPENBLAS_CORETYPE is shown, never changed) and the BLIS\n"
    "sub-configuration. Default sizes: 2048 cubed and the model's shapes.\n"
    "  --json       one JSON object per line instead of a table\n"
    "  --bf16       also time the bf16 GEMM of training (A and B rounded to\n"
    "               bf16, fp32 sums): slm's (own AMX tiles where the CPU has\n"
    "               them, else oneDNN) and oneDNN's gemm_bf16bf16f32\n"
    "  --threads N  threads for both libraries (default: all cores)\n"
    "  --size S     N (for N×N×N) or MxNxK; repeat the option for more sizes\n"
    "  --repeat R   timed calls per size (default: >= 2, until 0.5 s)\n";

/* BLIS's typed API (blis.h, BLIS 0.9): trans_t is an int-sized enum with
 * BLIS_NO_TRANSPOSE = 0; dim_t and inc_t are int64_t on 64-bit targets. */
typedef void (*bli_sgemm_fn)(int transa, int transb, int64_t m, int64_t n, int64_t k,
                             const float *alpha, const float *a, int64_t rs_a, int64_t cs_a,
                             const float *b, int64_t rs_b, int64_t cs_b, const float *beta,
                             float *c, int64_t rs_c, int64_t cs_c);

typedef struct {
    void *handle;
    const char *path;
    bli_sgemm_fn sgemm;
    const char *version; /* bli_info_get_version_str() */
    const char *arch;    /* bli_arch_string(bli_arch_query_id()): the kernel set */
} blis_lib;

/* dlsym returns void*; copying its bytes into the function pointer avoids
 * the object-to-function pointer cast ISO C leaves undefined. */
static void load_sym(void *handle, const char *name, void *fn_ptr, size_t size)
{
    void *p = dlsym(handle, name);
    if (size == sizeof p) memcpy(fn_ptr, &p, sizeof p);
}

/* Opens the OpenMP build of BLIS first (same libgomp as OpenBLAS and slm). */
static int blis_open(blis_lib *b)
{
    static const char *paths[] = {
        "/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4",
        "/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so",
        "libblis.so.4",
        "libblis.so",
    };
    memset(b, 0, sizeof *b);
    if (!BLIS_USABLE) return -1;
    for (size_t i = 0; i < sizeof paths / sizeof *paths && !b->handle; i++) {
        b->handle = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
        b->path = paths[i];
    }
    if (!b->handle) return -1;
    const char *(*version)(void) = NULL, *(*arch_string)(int) = NULL;
    int (*arch_id)(void) = NULL;
    void (*set_threads)(int64_t) = NULL;
    load_sym(b->handle, "bli_sgemm", &b->sgemm, sizeof b->sgemm);
    load_sym(b->handle, "bli_info_get_version_str", &version, sizeof version);
    load_sym(b->handle, "bli_arch_string", &arch_string, sizeof arch_string);
    load_sym(b->handle, "bli_arch_query_id", &arch_id, sizeof arch_id);
    load_sym(b->handle, "bli_thread_set_num_threads", &set_threads, sizeof set_threads);
    if (!b->sgemm || !version || !arch_string || !arch_id || !set_threads) {
        dlclose(b->handle);
        b->handle = NULL;
        return -1;
    }
    b->version = version();
    b->arch = arch_string(arch_id());
    set_threads(omp_get_max_threads());
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    int M, N, K;
} gemm_size;

enum { IMPL_SLM, IMPL_OPENBLAS, IMPL_BLIS, IMPL_SLM_BF16, IMPL_ONEDNN_BF16 };

/* The bf16 rounding of A and B, for --bf16. */
typedef struct {
    const uint16_t *A, *B;
} bf16_inputs;

/* A [M][K], B [K][N], C [M][N] row-major. */
static void run_gemm(int impl, const blis_lib *blis, const bf16_inputs *h, const gemm_size *s,
                     const float *A, const float *B, float *C)
{
    if (impl == IMPL_SLM_BF16) {
        gemm_bf16('N', 'N', s->M, s->N, s->K, 1.0f, h->A, s->K, h->B, s->N, 0.0f, C, s->N);
    } else if (impl == IMPL_ONEDNN_BF16) {
        gemm_bf16_onednn('N', 'N', s->M, s->N, s->K, 1.0f, h->A, s->K, h->B, s->N, 0.0f, C, s->N);
    } else if (impl == IMPL_SLM) {
        gemm_f32('N', 'N', s->M, s->N, s->K, 1.0f, A, s->K, B, s->N, 0.0f, C, s->N);
    } else if (impl == IMPL_OPENBLAS) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->M, s->N, s->K, 1.0f, A, s->K, B,
                    s->N, 0.0f, C, s->N);
    } else {
        const float one = 1.0f, zero = 0.0f;
        blis->sgemm(0, 0, s->M, s->N, s->K, &one, A, s->K, 1, B, s->N, 1, &zero, C, s->N, 1);
    }
}

/* Best seconds per call over the timed repetitions. */
static double time_gemm(int impl, const blis_lib *blis, const bf16_inputs *h, const gemm_size *s,
                        const float *A, const float *B, float *C, int repeat)
{
    run_gemm(impl, blis, h, s, A, B, C); /* warm-up */
    double best = INFINITY, total = 0.0;
    for (int r = 0; repeat ? r < repeat : (r < 2 || total < 0.5) && r < 1000; r++) {
        double t0 = now_s();
        run_gemm(impl, blis, h, s, A, B, C);
        double t = now_s() - t0;
        total += t;
        best = t < best ? t : best;
    }
    return best;
}

static void report(int json, const char *impl, const char *kernel, const gemm_size *s, int threads,
                   double sec)
{
    double ms = sec * 1e3, gflops = 2.0 * s->M * s->N * (double)s->K / sec * 1e-9;
    if (json)
        printf("{\"bench\":\"gemm\",\"impl\":\"%s\",\"kernel\":\"%s\",\"M\":%d,\"N\":%d,"
               "\"K\":%d,\"threads\":%d,\"ms\":%.9g,\"gflops\":%.9g}\n",
               impl, kernel, s->M, s->N, s->K, threads, ms, gflops);
    else
        printf("%-9s %-10s %5d %6d %5d %7d %10.3f %9.1f\n", impl, kernel, s->M, s->N, s->K, threads,
               ms, gflops);
    fflush(stdout);
}

/* Largest |x - y| / max |y|: slm and BLIS must compute what OpenBLAS
 * computes (a wrong prototype for the dlsym'd function would show here
 * first). */
static double rel_diff(const float *x, const float *y, size_t n)
{
    double d = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)x[i] - y[i]);
        d = e > d ? e : d;
        m = fabs(y[i]) > m ? fabs(y[i]) : m;
    }
    return m > 0.0 ? d / m : d;
}

/* Deterministic values in [-1, 1) (an LCG: the numbers do not matter, only
 * that they are not zeros or denormals). */
static void fill(float *x, size_t n, uint32_t seed)
{
    for (size_t e = 0; e < n; e++) {
        seed = seed * 1664525u + 1013904223u;
        x[e] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
}

static void free4(float *a, float *b, float *c, float *d)
{
    free_aligned(a);
    free_aligned(b);
    free_aligned(c);
    free_aligned(d);
}

static int parse_size(const char *arg, gemm_size *s)
{
    long m, n, k;
    char tail;
    if (!cli_parse_int(arg, 1, MAX_DIM, &m)) {
        s->M = s->N = s->K = (int)m;
        return 0;
    }
    if (sscanf(arg, "%ldx%ldx%ld%c", &m, &n, &k, &tail) != 3) return -1;
    if (m < 1 || n < 1 || k < 1 || m > MAX_DIM || n > MAX_DIM || k > MAX_DIM) return -1;
    *s = (gemm_size){(int)m, (int)n, (int)k};
    return 0;
}

/* --bf16: slm's gemm_bf16 (own AMX tiles where the CPU has them) and
 * oneDNN's bf16 GEMM on the bf16 rounding of A and B, checked against the
 * fp32 product C within bf16's rounding. */
static int bench_bf16(int json, const gemm_size *s, int threads, int repeat, const float *A,
                      const float *B, const float *C, float *C2)
{
    size_t a = (size_t)s->M * s->K, b = (size_t)s->K * s->N, c = (size_t)s->M * s->N;
    uint16_t *Ah = malloc(a * 2), *Bh = malloc(b * 2);
    int rc = CLI_OK;
    if (!Ah || !Bh) {
        rc = cli_error(CLI_RUNTIME, "bench gemm: out of memory for %dx%dx%d", s->M, s->N, s->K);
    } else {
        f32_to_bf16_array(Ah, A, a);
        f32_to_bf16_array(Bh, B, b);
        bf16_inputs h = {Ah, Bh};
        const char *kernel = gemm_bf16_amx_supported() ? "amx" : gemm_bf16_supported() ? "onednn"
                                                                                        : "portable";
        for (int impl = IMPL_SLM_BF16; impl <= IMPL_ONEDNN_BF16 && !rc; impl++) {
            if (impl == IMPL_ONEDNN_BF16 && !gemm_bf16_supported()) break;
            double sec = time_gemm(impl, NULL, &h, s, A, B, C2, repeat);
            /* inputs rounded to 8 bits: errors of ~2^-8 relative per term */
            double diff = rel_diff(C2, C, c);
            if (diff > 0.05)
                rc = cli_error(CLI_RUNTIME, "bench gemm: bf16 and fp32 disagree (%.3g) at %dx%dx%d",
                               diff, s->M, s->N, s->K);
            else
                report(json, impl == IMPL_SLM_BF16 ? "slm-bf16" : "dnnl-bf16",
                       impl == IMPL_SLM_BF16 ? kernel : "gemm_bf16", s, threads, sec);
        }
    }
    free(Ah), free(Bh);
    return rc;
}

/* Times every size with slm's kernels, OpenBLAS, then BLIS if present. */
static int bench_sizes(const gemm_size *sizes, int n_sizes, int threads, int repeat, int json,
                       int bf16, const blis_lib *blis)
{
    const char *core = openblas_get_corename();
    const char *level = cpu_level_name(kernel_level());
    for (int i = 0; i < n_sizes; i++) {
        const gemm_size *s = &sizes[i];
        size_t a = (size_t)s->M * s->K, b = (size_t)s->K * s->N, c = (size_t)s->M * s->N;
        float *A = alloc_aligned(a * sizeof(float));
        float *B = alloc_aligned(b * sizeof(float));
        float *C = alloc_aligned(c * sizeof(float));
        float *C2 = alloc_aligned(c * sizeof(float));
        float *C3 = alloc_aligned(c * sizeof(float));
        if (!A || !B || !C || !C2 || !C3) {
            free4(A, B, C, C2);
            free_aligned(C3);
            return cli_error(CLI_RUNTIME, "bench gemm: out of memory for %dx%dx%d", s->M, s->N,
                             s->K);
        }
        fill(A, a, 1);
        fill(B, b, 2);
        double sec_slm = time_gemm(IMPL_SLM, NULL, NULL, s, A, B, C3, repeat);
        double sec = time_gemm(IMPL_OPENBLAS, NULL, NULL, s, A, B, C, repeat);
        int rc = CLI_OK;
        double diff = rel_diff(C3, C, c);
        if (diff > 1e-4)
            rc = cli_error(CLI_RUNTIME,
                           "bench gemm: slm (%s) and OpenBLAS (%s kernels) disagree (%.3g) at "
                           "%dx%dx%d",
                           level, core ? core : "?", diff, s->M, s->N, s->K);
        report(json, "slm", level, s, threads, sec_slm);
        report(json, "openblas", core ? core : "?", s, threads, sec);
        if (bf16 && !rc) rc = bench_bf16(json, s, threads, repeat, A, B, C, C2);
        if (blis && !rc) {
            sec = time_gemm(IMPL_BLIS, blis, NULL, s, A, B, C2, repeat);
            double diff = rel_diff(C2, C, c);
            if (diff > 1e-4)
                rc = cli_error(CLI_RUNTIME,
                               "bench gemm: BLIS and OpenBLAS disagree (%.3g) at "
                               "%dx%dx%d",
                               diff, s->M, s->N, s->K);
            else
                report(json, "blis", blis->arch, s, threads, sec);
        }
        free4(A, B, C, C2);
        free_aligned(C3);
        if (rc) return rc;
    }
    return CLI_OK;
}

int bench_gemm(int argc, char **argv)
{
    gemm_size sizes[MAX_SIZES];
    int n_sizes = 0, json = 0, threads = 0, repeat = 0, bf16 = 0;
    cli_string_list size_args = {0};
    const cli_option opts[] = {
        {"--json", NULL, OPT_FLAG, &json, 0, 0, NULL},
        {"--bf16", NULL, OPT_FLAG, &bf16, 0, 0, NULL},
        {"--threads", NULL, OPT_INT, &threads, 0, 4096, NULL},
        {"--repeat", NULL, OPT_INT, &repeat, 1, 1000000, NULL},
        {"--size", NULL, OPT_STRING_LIST, &size_args, 0, 0, NULL},
    };
    char *pos[1];
    int n_pos;
    int rc = cli_parse_options("bench gemm", argc, argv, opts, sizeof opts / sizeof *opts, pos, 0,
                               &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    for (int i = 0; i < size_args.n && i < MAX_SIZES; i++, n_sizes++)
        if (parse_size(size_args.items[i], &sizes[n_sizes]))
            return cli_error(CLI_USAGE, "bench gemm: --size needs N or MxNxK, each 1 to %d",
                             MAX_DIM);
    if (!n_sizes) {
        /* 2048³, then M × N × K of the model's forward products: the L6 C384
         * model at B·T = 2048 (QKV, FC, FC-proj, V = 256 head) and GPT-2 124M
         * at B·T = 256 (QKV, FC, FC-proj, the V = 50257 head), at a 64-token
         * prompt chunk, 4 rows and one decoded token. */
        static const gemm_size def[] = {{2048, 2048, 2048}, {2048, 1152, 384}, {2048, 1536, 384},
                                        {2048, 384, 1536},  {2048, 256, 384},  {256, 2304, 768},
                                        {256, 3072, 768},   {256, 768, 3072},  {256, 50257, 768},
                                        {64, 2304, 768},    {4, 2304, 768},    {1, 2304, 768},
                                        {1, 768, 3072}};
        for (size_t i = 0; i < sizeof def / sizeof *def; i++)
            sizes[n_sizes++] = def[i];
    }
    if (threads == 0) threads = omp_get_num_procs();
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);

    blis_lib blis;
    int have_blis = blis_open(&blis) == 0;
    if (!json) {
        const char *coretype = getenv("OPENBLAS_CORETYPE");
        printf("sgemm C = A·B, float32, row-major; best of the timed calls\n");
        printf("slm: %s\n", kernel_path_name());
        if (bf16) printf("slm bf16: %s\n", gemm_bf16_path_name());
        printf("OpenBLAS: kernel %s (OPENBLAS_CORETYPE=%s), threads %d\n          config: %s\n",
               openblas_get_corename(), coretype ? coretype : "(unset)", openblas_get_num_threads(),
               openblas_get_config());
        if (have_blis)
            printf("BLIS %s: sub-configuration %s, threads %d (%s)\n", blis.version, blis.arch,
                   threads, blis.path);
        else
            printf("BLIS: %s: OpenBLAS only\n",
                   BLIS_USABLE ? "not found (no libblis.so)" : "skipped in a sanitizer build");
        printf("\n%-9s %-10s %5s %6s %5s %7s %10s %9s\n", "impl", "kernel", "M", "N", "K",
               "threads", "ms", "GFLOP/s");
    } else if (!have_blis) {
        fprintf(stderr, "slm: bench gemm: BLIS %s, OpenBLAS only\n",
                BLIS_USABLE ? "not found (no libblis.so)" : "skipped in a sanitizer build");
    }
    rc = bench_sizes(sizes, n_sizes, threads, repeat, json, bf16, have_blis ? &blis : NULL);
    /* BLIS stays loaded until exit: its thread-local state lives on in
     * libgomp's worker threads, and unloading it under them is unsafe. */
    return rc;
}
