/*
 * Flash attention forward pass: FlashAttention-2 (Dao 2023), Algorithm 1.
 *
 * For a block of queries Q_i [br][D] and each key tile K_j, V_j [bc][D]:
 *   S   = Q_i·K_jᵀ·scale (+ mask)                       [br][bc]
 *   m'  = max(m, rowmax(S))                             running max
 *   P   = exp(S − m'),  l = e^(m−m')·l + rowsum(P)      running sum (pre-dropout)
 *   O   = e^(m−m')·O + (P∘Z)·V_j                        Z = dropout keep/(1−p)
 * and at the end out = O / l, lse = m + log l.
 *
 * Layout choice: the query block is stored transposed and pre-scaled,
 * Qᵀ·scale [D][br], and S is computed transposed, Sᵀ [bc][br], so queries
 * are the vector lanes. Then the running max and sum are lane-wise (no
 * horizontal reductions), K needs no transposition (its rows are broadcast),
 * and O += P·V reads Pᵀ's columns as the broadcast scalars.
 *
 * Tiles that causal masking or kv_len hide from every query in the block are
 * never computed: the loop over key tiles stops at the block's last visible
 * key, so causal attention costs half of the full product.
 */
#include "attention/flash_internal.h"
#include "attention/flash_simd.h"
#include "core/alloc.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* One thread's workspace, offsets in floats (each 64-byte aligned). */
typedef struct {
    int br;        /* query rows per block: min(FLASH_BR, Tq rounded up to 16) */
    size_t qt;     /* Qᵀ·scale  [D][br]                                       */
    size_t st;     /* Sᵀ, then Pᵀ  [FLASH_BC][br]                             */
    size_t o;      /* unnormalised output  [br][D]                            */
    size_t m, l;   /* running max and sum  [br]                               */
    size_t alpha;  /* e^(m_old − m_new)  [br]                                 */
    size_t vis;    /* visible keys per row (int32)  [br]                      */
    size_t key_lo; /* dropout row keys, low and high halves (uint32)  [br]    */
    size_t key_hi;
    size_t total;
} fwd_layout;

static fwd_layout fwd_plan(const attn_call *c)
{
    fwd_layout L;
    int br = (c->Tq + 15) / 16 * 16;
    L.br = br < FLASH_BR ? br : FLASH_BR;
    size_t br_ = (size_t)L.br, D = (size_t)c->D, at = 0;
    L.qt = at, at += flash_line(D * br_);
    L.st = at, at += flash_line((size_t)FLASH_BC * br_);
    L.o = at, at += flash_line(br_ * D);
    L.m = at, at += flash_line(br_);
    L.l = at, at += flash_line(br_);
    L.alpha = at, at += flash_line(br_);
    L.vis = at, at += flash_line(br_);
    L.key_lo = at, at += flash_line(br_);
    L.key_hi = at, at += flash_line(br_);
    L.total = at;
    return L;
}

size_t flash_forward_bytes(const attn_call *c, int nt)
{
    return fwd_plan(c).total * (size_t)nt * sizeof(float);
}

/* Everything one block needs to know about the call and its head. */
typedef struct {
    const attn_call *c;
    const fwd_layout *L;
    float *ws; /* this thread's workspace */
    int b, h, i0, nr;
    const float *K, *V; /* this head's keys and values [Tk][D] */
} fwd_block;

/*
 * Online softmax over one tile, FlashAttention-2 Alg. 1 lines 8–10: turns
 * Sᵀ [nc][br] into (dropped) Pᵀ in place and updates m, l and alpha.
 * Sixteen query rows per vector; a row whose running max is still −inf (all
 * keys so far hidden) uses 0 as its max so exp(−inf − 0) = 0, never NaN.
 */
static void softmax_tile(const fwd_block *f, int j0, int nc, int need_vis)
{
    const fwd_layout *L = f->L;
    int br = L->br;
    float *St = f->ws + L->st, *m = f->ws + L->m, *l = f->ws + L->l;
    float *alpha = f->ws + L->alpha;
    const int32_t *vis = (const int32_t *)(f->ws + L->vis);
    const uint32_t *klo = (const uint32_t *)(f->ws + L->key_lo);
    const uint32_t *khi = (const uint32_t *)(f->ws + L->key_hi);
    const vf neg_inf = vf_set1(-INFINITY), zero = vf_set1(0.0f);
    int dropout = f->c->dropout > 0.0f;
    uint32_t threshold = slm_dropout_threshold(f->c->dropout);
    vf keep_scale = vf_set1(1.0f / (1.0f - f->c->dropout));

    for (int r0 = 0; r0 < br; r0 += VF_W) {
        vf mt = neg_inf;
        for (int j = 0; j < nc; j++) {
            float *s = St + (size_t)j * br + r0;
            vf x = vf_load(s);
            if (need_vis) {
                x = vf_sel(vi_gt(vis + r0, j0 + j), x, neg_inf);
                vf_store(s, x);
            }
            mt = vf_max(mt, x);
        }
        vf m_old = vf_load(m + r0);
        vf m_new = vf_max(m_old, mt);
        vf m_use = vf_sel(vf_eq(m_new, neg_inf), zero, m_new);
        vf a = vf_exp(vf_sub(m_old, m_use));
        vf sum = zero;
        for (int j = 0; j < nc; j++) {
            float *s = St + (size_t)j * br + r0;
            vf p = vf_exp(vf_sub(vf_load(s), m_use));
            sum = vf_add(sum, p);
            if (dropout)
                p = vf_sel(drop_keep_rows(klo + r0, khi + r0, j0 + j, threshold),
                           vf_mul(p, keep_scale), zero);
            vf_store(s, p);
        }
        vf_store(l + r0, vf_fmadd(a, vf_load(l + r0), sum));
        vf_store(m + r0, m_new);
        vf_store(alpha + r0, a);
    }
}

/* Qᵀ·scale [D][br] from the block's query rows [nr][D]; the padding columns
 * nr..br are zero so the padded rows of Sᵀ stay finite. */
static void load_queries(const fwd_block *f, const float *Q)
{
    int br = f->L->br, D = f->c->D, nr = f->nr;
    float *Qt = f->ws + f->L->qt;
    float scale = f->c->scale;
    for (int d = 0; d < D; d++) {
        float *row = Qt + (size_t)d * br;
        for (int r = 0; r < nr; r++) row[r] = Q[(size_t)r * D + d] * scale;
        for (int r = nr; r < br; r++) row[r] = 0.0f;
    }
}

/* Per-row state before the first key tile; returns the block's largest
 * number of visible keys and sets *vis_min to its smallest. */
static int init_rows(const fwd_block *f, int *vis_min)
{
    const fwd_layout *L = f->L;
    int32_t *vis = (int32_t *)(f->ws + L->vis);
    uint32_t *klo = (uint32_t *)(f->ws + L->key_lo), *khi = (uint32_t *)(f->ws + L->key_hi);
    int vmax = 0, vmin = f->c->Tk;
    for (int r = 0; r < L->br; r++) {
        int n = r < f->nr ? attn_visible_keys(f->c, f->b, f->i0 + r) : 0;
        vis[r] = n;
        if (r < f->nr) {
            vmax = n > vmax ? n : vmax;
            vmin = n < vmin ? n : vmin;
        }
        f->ws[L->m + r] = -INFINITY;
        f->ws[L->l + r] = 0.0f;
        uint64_t key = f->c->dropout > 0.0f ? slm_dropout_row_key(f->c->seed, f->b, f->h,
                                                                   f->i0 + r)
                                             : 0;
        klo[r] = (uint32_t)key;
        khi[r] = (uint32_t)(key >> 32);
    }
    *vis_min = vmin;
    return vmax;
}

/* Sᵀ[j][r] += mask[i0+r][j0+j]: the user's additive mask, transposed. */
static void add_mask(const fwd_block *f, int j0, int nc)
{
    int br = f->L->br, Tk = f->c->Tk;
    float *St = f->ws + f->L->st;
    for (int r = 0; r < f->nr; r++) {
        const float *mrow = f->c->mask + (size_t)(f->i0 + r) * Tk + j0;
        for (int j = 0; j < nc; j++) St[(size_t)j * br + r] += mrow[j];
    }
}

/* out = O / l and lse = m + log l for the block's rows; a row that saw no
 * visible key (l = 0) gets out = 0 and lse = −inf. */
static void finish_rows(const fwd_block *f, float *out, float *lse)
{
    int D = f->c->D;
    const float *O = f->ws + f->L->o, *m = f->ws + f->L->m, *l = f->ws + f->L->l;
    for (int r = 0; r < f->nr; r++) {
        float *dst = out + (size_t)r * D;
        if (l[r] > 0.0f) {
            float inv = 1.0f / l[r];
            for (int d = 0; d < D; d++) dst[d] = O[(size_t)r * D + d] * inv;
        } else {
            memset(dst, 0, (size_t)D * sizeof *dst);
        }
        if (lse) lse[r] = l[r] > 0.0f ? m[r] + logf(l[r]) : -INFINITY;
    }
}

/* One query block of one head: rows i0 .. i0+nr-1. out and lse point at the
 * block's first row. */
static void forward_block(fwd_block *f, const float *Q, float *out, float *lse)
{
    const attn_call *c = f->c;
    const fwd_layout *L = f->L;
    int br = L->br, D = c->D;
    float *St = f->ws + L->st, *O = f->ws + L->o;
    int vis_min;
    int kend = init_rows(f, &vis_min); /* keys >= kend are hidden from every row */
    load_queries(f, Q);
    for (int j0 = 0; j0 < kend; j0 += FLASH_BC) {
        int nc = kend - j0 < FLASH_BC ? kend - j0 : FLASH_BC;
        /* Sᵀ [nc][br] = K_j [nc][D] · Qᵀ·scale [D][br] */
        flash_gemm(nc, br, D, f->K + (size_t)j0 * D, D, 1, f->ws + L->qt, br, St, br,
                   FG_OVERWRITE, NULL);
        if (c->mask) add_mask(f, j0, nc);
        softmax_tile(f, j0, nc, j0 + nc > vis_min);
        /* O [nr][D] = alpha∘O + P [nr][nc] · V_j [nc][D], P read from Pᵀ */
        flash_gemm(f->nr, D, nc, St, 1, br, f->V + (size_t)j0 * D, D, O, D,
                   j0 == 0 ? FG_OVERWRITE : FG_ROWSCALE, f->ws + L->alpha);
    }
    finish_rows(f, out, lse);
}

int attn_flash_forward(const attn_call *c, const float *q, const float *k, const float *v,
                       float *out, float *lse)
{
    int nt = flash_threads();
    fwd_layout L = fwd_plan(c);
    float *ws = slm_alloc_aligned(L.total * (size_t)nt * sizeof(float));
    if (!ws) return SLM_ENOMEM;
    int Tq = c->Tq, Tk = c->Tk, D = c->D;
    int nqb = (Tq + L.br - 1) / L.br;
    long items = (long)c->B * c->H * nqb;
    /* Work items are (head, query block), the last (largest, under causal
     * masking) blocks of a head first so dynamic scheduling balances the
     * tail. Each item is computed the same way whichever thread takes it,
     * so results do not depend on the thread count. */
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num();
        fwd_block f = {.c = c, .L = &L, .ws = ws + (size_t)tid * L.total};
#pragma omp for schedule(dynamic, 1)
        for (long it = 0; it < items; it++) {
            size_t head = (size_t)(it / nqb);
            int qb = nqb - 1 - (int)(it % nqb);
            f.b = (int)(head / (size_t)c->H);
            f.h = (int)(head % (size_t)c->H);
            f.i0 = qb * L.br;
            f.nr = Tq - f.i0 < L.br ? Tq - f.i0 : L.br;
            f.K = k + head * Tk * D;
            f.V = v + head * Tk * D;
            size_t row = head * Tq + (size_t)f.i0;
            forward_block(&f, q + row * D, out + row * D, lse ? lse + row : NULL);
        }
    }
    slm_free_aligned(ws);
    return SLM_OK;
}
