/* Peak instruction rates of this CPU, one core: how fast the dot-product
 * instructions the fp32, bf16 and int8 kernels are built on actually run,
 * measured rather than assumed from a datasheet (issue 11: on one Xeon bf16
 * runs at half the fp32 rate, on Zen 4 it is expected to run at twice). */
#ifndef SLM_KERNELS_ISA_RATE_H
#define SLM_KERNELS_ISA_RATE_H

typedef struct {
    const char *name;     /* "fp32 vfmadd231ps zmm", ...                     */
    const char *dtype;    /* "fp32", "bf16", "int8"                          */
    const char *unit;     /* "GFLOP/s" or "GOP/s" (int8: multiply + add)     */
    int supported;        /* 0: this CPU (or SLM_CPU_LEVEL) lacks it          */
    double rate;          /* operations per second / 1e9, one core           */
    double ops_per_instr; /* multiply and add counted separately           */
    int chains;           /* independent dependency chains in the loop       */
} isa_rate;

/* Number of entries isa_rates_measure fills. */
#define ISA_RATE_COUNT 9

/* Measures each instruction for about `seconds` (best of 3 repeats) on the
 * calling thread; unsupported entries get supported = 0 and rate 0.
 * Writes ISA_RATE_COUNT entries. */
void isa_rates_measure(isa_rate *out, double seconds);

#endif
