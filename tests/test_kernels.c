/*
 * The GEMM / GEMV kernels (src/kernels) against a float64 reference, on every
 * path this machine can run:
 *   - the own GEMVs and the portable GEMM are called at each level directly;
 *   - gemm_f32 (oneDNN or the own kernels, as the process's level says) is
 *     tested in this process, then the binary runs itself again with
 *     SLM_CPU_LEVEL set to each lower level (oneDNN's instruction-set cap is
 *     fixed per process), its cases named "...[avx2]", "...[portable]".
 *
 * Tolerance from fp32 rounding, not tuned: a sum of K products computed in
 * any order (blocked, FMA or not) is within γ_K·Σ|a||b| of the exact value,
 * γ_K = K·u/(1−K·u), u = 2⁻²⁴; alpha and beta add two roundings more. Every
 * element is checked against (K + 4)·u·(|alpha|·Σ_k|a_ik·b_kj| + |beta·c_ij|),
 * with the sums of magnitudes computed in float64 alongside the reference.
 */
#include "core/cpu.h"
#include "kernels/kernels.h"
#include "test.h"

#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define N(a) (sizeof(a) / sizeof *(a))

typedef struct {
    int M, N, K;
} shape;

/* Odd and edge shapes (M = 1, K = 1, N not a multiple of 8 or 16, tails of
 * every register block) and a few of the model's own. */
static const shape shapes[] = {
    {1, 1, 1},      {1, 17, 1},     {1, 15, 3},     {1, 16, 5},     {1, 33, 7},     {1, 100, 64},
    {1, 2304, 768}, {1, 385, 1000}, {2, 3, 1},      {3, 17, 5},     {4, 2304, 768}, {5, 31, 65},
    {7, 64, 64},    {64, 48, 33},   {70, 130, 300}, {256, 768, 96}, {33, 1, 17},
};

static double *widen(const float *x, size_t n)
{
    double *d = malloc(n * sizeof *d);
    if (d)
        for (size_t i = 0; i < n; i++)
            d[i] = x[i];
    return d;
}

/* want = alpha·op(A)·op(B) + beta·C0 in float64; mag the matching bound's
 * magnitude, |alpha|·Σ|a·b| + |beta·c|. */
static void reference(char ta, char tb, int M, int N, int K, double alpha, const double *A, int lda,
                      const double *B, int ldb, double beta, const double *C0, int ldc,
                      double *want, double *mag)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0, m = 0.0;
            for (int k = 0; k < K; k++) {
                double a = ta == 'N' ? A[(size_t)i * lda + k] : A[(size_t)k * lda + i];
                double b = tb == 'N' ? B[(size_t)k * ldb + j] : B[(size_t)j * ldb + k];
                s += a * b;
                m += fabs(a * b);
            }
            double c = beta == 0.0 ? 0.0 : beta * C0[(size_t)i * ldc + j];
            want[(size_t)i * N + j] = alpha * s + c;
            mag[(size_t)i * N + j] = fabs(alpha) * m + fabs(c);
        }
}

/* Largest |got − want| / bound over the M×N elements (> 1 fails; NaN → inf). */
static double worst_ratio(const float *C, int ldc, const double *want, const double *mag, int M,
                          int N, int K)
{
    double worst = 0.0, u = 0x1p-24;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double bound = (K + 4) * u * mag[(size_t)i * N + j] + 1e-30;
            double r = fabs((double)C[(size_t)i * ldc + j] - want[(size_t)i * N + j]) / bound;
            if (!(r <= worst)) worst = isnan(r) ? INFINITY : r;
        }
    return worst;
}

typedef void (*gemm_fn)(char, char, int, int, int, float, const float *, int, const float *, int,
                        float, float *, int);

/* One GEMM case through fn: padded leading dimensions (lda = cols + 3) so
 * a kernel that ignores them fails; C starts as NaN when beta = 0 (must be
 * overwritten, not scaled). Returns the worst error ratio. */
static double gemm_case(gemm_fn fn, char ta, char tb, const shape *s, float alpha, float beta,
                        unsigned long long seed)
{
    int M = s->M, N = s->N, K = s->K;
    int arows = ta == 'N' ? M : K, acols = ta == 'N' ? K : M;
    int brows = tb == 'N' ? K : N, bcols = tb == 'N' ? N : K;
    int lda = acols + 3, ldb = bcols + 1, ldc = N + 2;
    size_t na = (size_t)arows * lda, nb = (size_t)brows * ldb, nc = (size_t)M * ldc;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C = malloc(nc * sizeof *C);
    double *want = malloc((size_t)M * N * sizeof *want), *mag = malloc((size_t)M * N * sizeof *mag);
    double *A64 = NULL, *B64 = NULL, *C64 = NULL, worst = INFINITY;
    if (A && B && C && want && mag) {
        test_fill_uniform(A, na, seed, -1.0f, 1.0f);
        test_fill_uniform(B, nb, seed + 1, -2.0f, 2.0f);
        test_fill_uniform(C, nc, seed + 2, -1.0f, 1.0f);
        if (beta == 0.0f)
            for (size_t e = 0; e < nc; e++)
                C[e] = NAN;
        A64 = widen(A, na), B64 = widen(B, nb), C64 = widen(C, nc);
        if (A64 && B64 && C64) {
            reference(ta, tb, M, N, K, alpha, A64, lda, B64, ldb, beta, C64, ldc, want, mag);
            fn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            worst = worst_ratio(C, ldc, want, mag, M, N, K);
            /* The padding between rows of C is not C's: never written. */
            for (int i = 0; i < M && worst <= 1.0; i++)
                for (int j = N; j < ldc; j++) {
                    double now = C[(size_t)i * ldc + j], was = C64[(size_t)i * ldc + j];
                    if (!(now == was || (isnan(now) && isnan(was)))) worst = INFINITY;
                }
        }
    }
    free(A), free(B), free(C), free(want), free(mag), free(A64), free(B64), free(C64);
    return worst;
}

static void all_gemm_cases(gemm_fn fn, const char *name)
{
    static const char tr[][2] = {{'N', 'N'}, {'N', 'T'}, {'T', 'N'}, {'T', 'T'}};
    static const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.7f, -0.5f}};
    for (size_t s = 0; s < N(shapes); s++)
        for (size_t t = 0; t < N(tr); t++)
            for (size_t k = 0; k < N(ab); k++) {
                double e = gemm_case(fn, tr[t][0], tr[t][1], &shapes[s], ab[k][0], ab[k][1],
                                     1000 + 10 * s + t);
                CHECK(e <= 1.0, "%s %c%c M%d N%d K%d alpha %g beta %g: error %.3g× the fp32 bound",
                      name, tr[t][0], tr[t][1], shapes[s].M, shapes[s].N, shapes[s].K, ab[k][0],
                      ab[k][1], e);
            }
}

/* The process's path: oneDNN at avx512 / avx2, the own kernels at portable
 * (and the GEMVs at M = 1 on every level). */
static void test_gemm_f32_matches_f64(void)
{
    all_gemm_cases(gemm_f32, "gemm_f32");
}

static void test_gemm_portable_matches_f64(void)
{
    all_gemm_cases(gemm_portable_f32, "gemm_portable_f32");
}

/* K == 0: C = beta·C (no product at all); M or N == 0: nothing touched. */
static void test_gemm_empty_shapes(void)
{
    float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {NAN}, B[1] = {NAN};
    gemm_f32('N', 'N', 2, 3, 0, 1.0f, A, 1, B, 3, 0.5f, C, 3);
    CHECK(C[0] == 0.5f && C[5] == 3.0f, "K = 0 must scale C by beta, got %g %g", C[0], C[5]);
    gemm_f32('N', 'N', 2, 3, 0, 1.0f, A, 1, B, 3, 0.0f, C, 3);
    CHECK(C[0] == 0.0f && C[5] == 0.0f, "K = 0, beta = 0 must zero C");
    C[0] = 7.0f;
    gemm_f32('N', 'N', 0, 3, 4, 1.0f, A, 4, B, 3, 0.0f, C, 3);
    gemm_f32('N', 'N', 2, 0, 4, 1.0f, A, 4, B, 3, 0.0f, C, 3);
    CHECK(C[0] == 7.0f, "M = 0 or N = 0 wrote to C");
}

/* Each level of the own GEMVs, both forms, against float64, with beta 0
 * (y NaN before: overwritten), 1 and -0.5. */
static void gemv_levels(int max_level)
{
    for (int level = CPU_PORTABLE; level <= max_level; level++)
        for (size_t s = 0; s < N(shapes); s++) {
            if (shapes[s].M != 1) continue;
            int K = shapes[s].K, n = shapes[s].N, ldw = n + 5;
            const float betas[] = {0.0f, 1.0f, -0.5f};
            float *W = malloc((size_t)K * ldw * sizeof *W), *x = malloc((size_t)K * sizeof *x);
            float *y = malloc((size_t)n * sizeof *y), *y0 = malloc((size_t)n * sizeof *y0);
            float *Wt = malloc((size_t)n * (K + 3) * sizeof *Wt);
            double *want = malloc((size_t)n * sizeof *want), *mag = malloc((size_t)n * sizeof *mag);
            double *W64 = NULL, *x64 = NULL, *y64 = NULL, *Wt64 = NULL;
            if (W && x && y && y0 && Wt && want && mag) {
                test_fill_uniform(W, (size_t)K * ldw, 7 + s, -1.0f, 1.0f);
                test_fill_uniform(Wt, (size_t)n * (K + 3), 8 + s, -1.0f, 1.0f);
                test_fill_uniform(x, (size_t)K, 9 + s, -3.0f, 3.0f);
                test_fill_uniform(y0, (size_t)n, 10 + s, -1.0f, 1.0f);
                W64 = widen(W, (size_t)K * ldw), x64 = widen(x, (size_t)K);
                y64 = widen(y0, (size_t)n), Wt64 = widen(Wt, (size_t)n * (K + 3));
            }
            for (size_t b = 0; b < N(betas) && W64 && x64 && y64 && Wt64; b++) {
                /* y (N) = x (K) · W (K,N) */
                memcpy(y, y0, (size_t)n * sizeof *y);
                if (betas[b] == 0.0f)
                    for (int j = 0; j < n; j++)
                        y[j] = NAN;
                reference('N', 'N', 1, n, K, 1.0, x64, K, W64, ldw, betas[b], y64, n, want, mag);
                gemv_xw_f32(level, 1, K, n, x, K, W, ldw, betas[b], y, n);
                double e = worst_ratio(y, n, want, mag, 1, n, K);
                CHECK(e <= 1.0, "gemv_xw[%s] K%d N%d beta %g: error %.3g× the fp32 bound",
                      cpu_level_name(level), K, n, betas[b], e);
                /* y (N) = Wt (N,K) · x (K) */
                memcpy(y, y0, (size_t)n * sizeof *y);
                if (betas[b] == 0.0f)
                    for (int j = 0; j < n; j++)
                        y[j] = NAN;
                reference('N', 'T', 1, n, K, 1.0, x64, K, Wt64, K + 3, betas[b], y64, n, want, mag);
                gemv_wx_f32(level, n, K, Wt, K + 3, x, betas[b], y);
                e = worst_ratio(y, n, want, mag, 1, n, K);
                CHECK(e <= 1.0, "gemv_wx[%s] M%d K%d beta %g: error %.3g× the fp32 bound",
                      cpu_level_name(level), n, K, betas[b], e);
            }
            free(W), free(x), free(y), free(y0), free(Wt), free(want), free(mag);
            free(W64), free(x64), free(y64), free(Wt64);
        }
}

static void test_gemv_every_level_matches_f64(void)
{
    gemv_levels(cpu_level());
}

/* The own kernels sum each output in a fixed order: 1 and 2 threads give the
 * same bits (so training and decoding do not depend on --threads). */
static void test_gemv_same_bits_for_any_thread_count(void)
{
    int K = 768, n = 2304;
    float *W = malloc((size_t)K * n * sizeof *W), *x = malloc((size_t)K * sizeof *x);
    float *y1 = malloc((size_t)n * sizeof *y1), *y2 = malloc((size_t)n * sizeof *y2);
    if (!W || !x || !y1 || !y2) {
        CHECK(0, "out of memory");
    } else {
        test_fill_uniform(W, (size_t)K * n, 3, -1.0f, 1.0f);
        test_fill_uniform(x, (size_t)K, 4, -1.0f, 1.0f);
        int saved = omp_get_max_threads();
        for (int level = CPU_PORTABLE; level <= cpu_level(); level++) {
            omp_set_num_threads(1);
            gemv_xw_f32(level, 1, K, n, x, K, W, n, 0.0f, y1, n);
            /* 2 threads: two row parts each; 3: uneven; 5: parts split by
             * columns too (more threads than parts). */
            for (int nt = 2; nt <= 5; nt += nt == 3 ? 2 : 1) {
                omp_set_num_threads(nt);
                gemv_xw_f32(level, 1, K, n, x, K, W, n, 0.0f, y2, n);
                CHECK(!memcmp(y1, y2, (size_t)n * sizeof *y1),
                      "gemv_xw[%s]: %d threads change bits", cpu_level_name(level), nt);
            }
            omp_set_num_threads(1);
            gemv_wx_f32(level, n / 3, K, W, K, x, 0.0f, y1);
            omp_set_num_threads(2);
            gemv_wx_f32(level, n / 3, K, W, K, x, 0.0f, y2);
            CHECK(!memcmp(y1, y2, (size_t)(n / 3) * sizeof *y1), "gemv_wx[%s]: threads change bits",
                  cpu_level_name(level));
        }
        omp_set_num_threads(saved);
    }
    free(W), free(x), free(y1), free(y2);
}

/* A token's row of Y does not depend on the other rows decoded with it
 * (batched decoding equals one token at a time): x as row 2 of 3. */
static void test_gemv_same_bits_for_any_row_count(void)
{
    int K = 768, n = 2304;
    float *W = malloc((size_t)K * n * sizeof *W), *X = malloc((size_t)3 * K * sizeof *X);
    float *y1 = malloc((size_t)n * sizeof *y1), *Y3 = malloc((size_t)3 * n * sizeof *Y3);
    if (!W || !X || !y1 || !Y3) {
        CHECK(0, "out of memory");
    } else {
        test_fill_uniform(W, (size_t)K * n, 5, -1.0f, 1.0f);
        test_fill_uniform(X, (size_t)3 * K, 6, -1.0f, 1.0f);
        for (int level = CPU_PORTABLE; level <= cpu_level(); level++) {
            gemv_xw_f32(level, 1, K, n, X + 2 * K, K, W, n, 0.0f, y1, n);
            gemv_xw_f32(level, 3, K, n, X, K, W, n, 0.0f, Y3, n);
            CHECK(!memcmp(y1, Y3 + 2 * n, (size_t)n * sizeof *y1),
                  "gemv_xw[%s]: row 2 of 3 differs from the row alone", cpu_level_name(level));
        }
    }
    free(W), free(X), free(y1), free(Y3);
}

/* The report names the level the process runs, and SLM_CPU_LEVEL lowers it. */
static void test_path_name_says_the_level(void)
{
    const char *name = kernel_path_name(), *lvl = cpu_level_name(kernel_level());
    CHECK(!strncmp(name, lvl, strlen(lvl)), "path '%s' does not start with '%s'", name, lvl);
    CHECK(kernel_level() == cpu_level(), "kernel_level %d, cpu_level %d", kernel_level(),
          cpu_level());
    const char *cap = getenv("SLM_CPU_LEVEL");
    if (cap && !strcmp(cap, "portable"))
        CHECK(kernel_level() == CPU_PORTABLE, "SLM_CPU_LEVEL=portable ignored");
    if (kernel_level() != CPU_PORTABLE)
        CHECK(strstr(name, "oneDNN") != NULL, "no GEMM library named in '%s'", name);
}

/* oneDNN's AVX-512 sgemm runs with RSP pointing into the heap
 * (uxlfoundation/oneDNN#4845): a signal taken inside it writes its frame
 * there and a later free() aborts. A SIGALRM every 30 us over ~40,000
 * GEMMs of a feed-forward layer's shape (unguarded, this aborted within
 * seconds) must leave every result bit-identical and the bytes after C
 * untouched. In a child, so an abort is a FAIL line, not a lost runner. */
static volatile sig_atomic_t storm_signals;

static void count_signal(int sig)
{
    (void)sig;
    storm_signals++;
}

static int signal_storm_child(void)
{
    enum { M = 8, N = 128, K = 512, CANARY = 64 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *c = malloc(sizeof(float) * (M * N + CANARY)), *ref = malloc(sizeof(float) * M * N);
    if (!a || !b || !c || !ref) return 2;
    for (int i = 0; i < M * K; i++)
        a[i] = (float)(i % 13) * 0.1f - 0.6f;
    for (int i = 0; i < K * N; i++)
        b[i] = (float)(i % 7) * 0.1f - 0.3f;
    gemm_f32('N', 'N', M, N, K, 1.0f, a, K, b, N, 0.0f, ref, N);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_signal;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval every = {{0, 30}, {0, 30}};
    setitimer(ITIMER_REAL, &every, NULL);
    int bad = 0;
    for (long calls = 0; calls < 200000 && storm_signals < 40000 && !bad; calls++) {
        for (int i = 0; i < CANARY; i++)
            c[M * N + i] = -7.0f;
        gemm_f32('N', 'N', M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
        bad = memcmp(c, ref, sizeof(float) * M * N) != 0;
        for (int i = 0; i < CANARY; i++)
            bad |= c[M * N + i] != -7.0f;
        free(malloc(4096)); /* malloc checks its neighbours' headers */
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    free(a), free(b), free(c), free(ref);
    return bad ? 3 : storm_signals < 1000 ? 4 : 0;
}

static void test_gemm_survives_a_signal_storm(void)
{
    /* fork + exec: libgomp's pool does not survive a bare fork. */
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
        execl("/proc/self/exe", "test_kernels", "--signal-storm", (char *)NULL);
        _exit(127);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid failed");
    CHECK(WIFEXITED(status), "the child died of signal %d (heap corrupted by a signal in a GEMM)",
          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    CHECK(WEXITSTATUS(status) == 0,
          "child exit %d (3: a result or the bytes after C changed; "
          "4: too few signals arrived)",
          WEXITSTATUS(status));
}

/* The transposing bf16 rounding (the Aᵀ operands of bf16 training on AMX)
 * equals f32_to_bf16_one element by element at this level: ties, NaN, ±inf,
 * values past bf16's range, and rows and columns that are not multiples of
 * the 16-wide blocks, with a source stride wider than its rows and the
 * destination's stride bf16_transposed_ld. */
static void test_bf16_transposed_rounding(void)
{
    const int shapes[][3] = {{37, 29, 31}, {16, 16, 16}, {64, 48, 50},    {1, 5, 5},
                             {5, 1, 3},    {300, 270, 275}, {512, 20, 24}};
    /* whole lines, and one more where the stride would be a multiple of 1 KiB */
    CHECK(bf16_transposed_ld(37) == 64 && bf16_transposed_ld(256) == 256 &&
              bf16_transposed_ld(512) == 544 && bf16_transposed_ld(2048) == 2080,
          "bf16_transposed_ld: %d %d %d %d", bf16_transposed_ld(37), bf16_transposed_ld(256),
          bf16_transposed_ld(512), bf16_transposed_ld(2048));
    for (size_t s = 0; s < N(shapes); s++) {
        int rows = shapes[s][0], cols = shapes[s][1], lds = shapes[s][2];
        int ldd = bf16_transposed_ld(rows);
        float *src = malloc(sizeof(float) * rows * lds);
        uint16_t *dst = malloc(2 * (size_t)ldd * cols);
        test_fill_uniform(src, (size_t)rows * lds, 11 + s, -3.0f, 3.0f);
        const float special[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, NAN, INFINITY, -INFINITY,
                                 3.4e38f, -0.0f, 1e-40f};
        for (size_t k = 0; k < N(special) && k < (size_t)rows * cols; k++)
            src[(k % rows) * lds + (k * 7) % cols] = special[k];
        f32_to_bf16_transposed(dst, ldd, src, rows, cols, lds);
        int bad = 0;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                bad += dst[(size_t)j * ldd + i] != f32_to_bf16_one(src[(size_t)i * lds + j]);
        CHECK(bad == 0, "%dx%d (ld %d): %d elements differ from f32_to_bf16_one", rows, cols, lds,
              bad);
        free(src), free(dst);
    }
}

/* This binary again with SLM_CPU_LEVEL=level: its ok/FAIL lines join ours. */
static int run_child(const char *self, const char *level)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        setenv("SLM_CPU_LEVEL", level, 1);
        execl(self, self, level, (char *)NULL);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--signal-storm")) return signal_storm_child();
    /* A child (argv[1] = its level) suffixes its case names. */
    char suffix[32] = "";
    if (argc > 1) snprintf(suffix, sizeof suffix, "[%s]", argv[1]);
    struct {
        void (*fn)(void);
        const char *name;
    } cases[] = {
        {test_gemm_f32_matches_f64, "test_gemm_f32_matches_f64"},
        {test_gemm_empty_shapes, "test_gemm_empty_shapes"},
        {test_path_name_says_the_level, "test_path_name_says_the_level"},
        {test_gemm_survives_a_signal_storm, "test_gemm_survives_a_signal_storm"},
        {test_bf16_transposed_rounding, "test_bf16_transposed_rounding"},
        {test_gemm_portable_matches_f64, "test_gemm_portable_matches_f64"},
        {test_gemv_every_level_matches_f64, "test_gemv_every_level_matches_f64"},
        {test_gemv_same_bits_for_any_thread_count, "test_gemv_same_bits_for_any_thread_count"},
        {test_gemv_same_bits_for_any_row_count, "test_gemv_same_bits_for_any_row_count"},
    };
    /* Children rerun only what depends on the process's level. */
    size_t n_cases = argc > 1 ? 5 : N(cases);
    for (size_t i = 0; i < n_cases; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s%s", cases[i].name, suffix);
        test_run_(cases[i].fn, name);
    }
    int rc = test_summary();
    if (argc == 1) {
        /* Every level below this CPU's, each in its own process. */
        for (int level = cpu_level() - 1; level >= CPU_PORTABLE; level--) {
            int child = run_child("/proc/self/exe", cpu_level_name(level));
            if (child != 0) {
                printf("FAIL test_kernels[%s]: the child exited with %d\n", cpu_level_name(level),
                       child);
                rc = 1;
            }
        }
    }
    return rc;
}
