/*
 * slm bench isa — the instruction rates the kernels are built on, measured
 * on one core of this CPU: fp32 vfmadd231ps, bf16 vdpbf16ps, int8 vpdpbusd
 * (zmm, ymm EVEX and AVX-VNNI ymm) and AVX2's int8 fallback, each as 12
 * independent dependency chains (src/kernels/isa_rate.c). The ratios decide
 * which kernels pay off here: bf16 math only where vdpbf16ps beats fp32 FMA,
 * int8 where vpdpbusd beats both.
 */
#include "cli/bench.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "core/cpu.h"
#include "kernels/isa_rate.h"
#include "kernels/kernels.h"

#include <stdio.h>

static const char *help =
    "usage: slm bench isa [--json] [--seconds S]\n\n"
    "Measures fp32, bf16 and int8 dot-product instruction rates on one core\n"
    "(12 independent chains, best of 3 runs of about S seconds, default 0.2),\n"
    "GFLOP/s or GOP/s counting multiply and add separately, and each rate as a\n"
    "multiple of fp32 vfmadd231ps on zmm. SLM_CPU_LEVEL=avx2|portable hides\n"
    "the wider paths.\n";

int bench_isa(int argc, char **argv)
{
    int json = 0;
    double seconds = 0.2;
    const cli_option opts[] = {
        {"--json", NULL, OPT_FLAG, &json, 0, 0, NULL},
        {"--seconds", NULL, OPT_FLOAT, &seconds, 0.001, 60, NULL},
    };
    int n_pos;
    int rc = cli_parse_options("bench isa", argc, argv, opts, sizeof opts / sizeof *opts, NULL, 0,
                               &n_pos);
    if (rc == -1) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (rc) return rc;
    cpu_features f = cpu_detect();
    int level = cpu_level();
    isa_rate r[ISA_RATE_COUNT];
    isa_rates_measure(r, seconds);
    double fp32 = r[0].supported ? r[0].rate : r[1].rate;
    if (!json) {
        printf("cpu path %s (avx2 %d, avx512 %d, avx512_bf16 %d, avx512_vnni %d, avx_vnni %d, "
               "amx_bf16 %d); one core, %d chains (AMX: 4)\n",
               cpu_level_name(level), f.avx2, f.avx512, f.avx512_bf16, f.avx512_vnni, f.avx_vnni,
               gemm_bf16_amx_supported(), r[0].chains);
        printf("%-36s %9s %-8s %s\n", "instruction", "rate", "unit", "vs fp32 zmm");
    }
    for (int i = 0; i < ISA_RATE_COUNT; i++) {
        if (json) {
            if (!r[i].supported) continue;
            printf("{\"bench\":\"isa\",\"impl\":\"%s\",\"dtype\":\"%s\",\"path\":\"%s\","
                   "\"threads\":1,\"chains\":%d,\"ops_per_instr\":%g,\"%s\":%.2f}\n",
                   r[i].name, r[i].dtype, cpu_level_name(level), r[i].chains, r[i].ops_per_instr,
                   r[i].dtype[0] == 'i' ? "gops" : "gflops", r[i].rate);
        } else if (!r[i].supported) {
            printf("%-36s %9s %-8s\n", r[i].name, "-", "(absent)");
        } else {
            printf("%-36s %9.1f %-8s %.2fx\n", r[i].name, r[i].rate, r[i].unit,
                   fp32 > 0 ? r[i].rate / fp32 : 0.0);
        }
    }
    return CLI_OK;
}
