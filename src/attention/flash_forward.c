/*
 * Flash attention forward pass: FlashAttention-2 (Dao 2023), Algorithm 1.
 *
 * For a block of queries Q_i [br][D] and each key tile K_j, V_j [bc][D]:
 *   S   = Q_i·K_jᵀ·scale (+ mask)                       [br][bc]
 *   m'  = max(m, rowmax(S))                             running max
 *   P   = exp(S − m'),  l = e^(m−m')·l + rowsum(P)      running sum (pre-dropout)
 *   O   = e^(m−m')·O + (P∘Z)·V_j                        Z = dropout keep/(1−p)
 * and at the end out = O / l, lse = m + log l. The running max is kept in
 * base 2, m₂ = m·log2 e, so each exponential is 2^(S·log2 e − m₂): one FMA
 * and vf_exp2 (flash_internal.h).
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
/* First, in a block of its own: it renames this copy's functions. */
#include "attention/flash_isa.h"

#include "attention/flash_internal.h"
#include "attention/flash_simd.h"
#include "core/alloc.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* Where each buffer of one thread's workspace starts, in bytes (each
 * 64-byte aligned); total is one thread's share. */
typedef struct {
    int br; /* query rows per block: min(FLASH_BR, Tq rounded up to 16) */
    size_t qt, st, o, m, l, alpha, vis, key_lo, key_hi, total;
} fwd_layout;

static fwd_layout fwd_plan(const attn_call *c)
{
    fwd_layout L;
    int br = (c->Tq + 15) / 16 * 16;
    L.br = br < FLASH_BR ? br : FLASH_BR;
    size_t br_ = (size_t)L.br, D = (size_t)c->D, at = 0, f = sizeof(float);
    L.qt = at, at += f * flash_line(D * br_);
    L.st = at, at += f * flash_line((size_t)FLASH_BC * br_);
    L.o = at, at += f * flash_line(br_ * D);
    L.m = at, at += f * flash_line(br_);
    L.l = at, at += f * flash_line(br_);
    L.alpha = at, at += f * flash_line(br_);
    L.vis = at, at += f * flash_line(br_); /* int32 and uint32 are float-sized */
    L.key_lo = at, at += f * flash_line(br_);
    L.key_hi = at, at += f * flash_line(br_);
    L.total = at;
    return L;
}

size_t flash_forward_bytes(const attn_call *c, int nt)
{
    return fwd_plan(c).total * (size_t)nt;
}

/* One thread's view: its buffers, and the query block it works on. */
typedef struct {
    const attn_call *c;
    int br;
    float *qt;          /* Qᵀ·scale  [D][br]                           */
    float *st;          /* Sᵀ, then Pᵀ  [FLASH_BC][br]                 */
    float *o;           /* unnormalised output  [br][D]                */
    float *m, *l;       /* running max (base 2: ·log2 e) and sum  [br] */
    float *alpha;       /* e^(m_old − m_new)  [br]                     */
    int32_t *vis;       /* keys visible to each row  [br]              */
    uint32_t *key_lo;   /* dropout row keys, low 32 bits  [br]         */
    uint32_t *key_hi;   /*                   high 32 bits  [br]        */
    int b, h, i0, nr;   /* batch, head, first row, rows in the block   */
    const float *K, *V; /* this head's keys and values [Tk][D]         */
} fwd_block;

static fwd_block bind_workspace(const attn_call *c, const fwd_layout *L, unsigned char *ws)
{
    fwd_block f = {.c = c, .br = L->br};
    f.qt = (float *)(void *)(ws + L->qt);
    f.st = (float *)(void *)(ws + L->st);
    f.o = (float *)(void *)(ws + L->o);
    f.m = (float *)(void *)(ws + L->m);
    f.l = (float *)(void *)(ws + L->l);
    f.alpha = (float *)(void *)(ws + L->alpha);
    f.vis = (int32_t *)(void *)(ws + L->vis);
    f.key_lo = (uint32_t *)(void *)(ws + L->key_lo);
    f.key_hi = (uint32_t *)(void *)(ws + L->key_hi);
    return f;
}

/*
 * Online softmax over one tile, FlashAttention-2 Alg. 1 lines 8–10: turns
 * Sᵀ [nc][br] into (dropped) Pᵀ in place and updates m (in base 2), l and
 * alpha. Sixteen query rows per vector; a row whose running max is still
 * −inf (all keys so far hidden) uses 0 as its max so 2^(−inf − 0) = 0,
 * never NaN.
 */
static void softmax_tile(const fwd_block *f, int j0, int nc, int need_vis)
{
    const vf neg_inf = vf_set1(-INFINITY), zero = vf_set1(0.0f);
    const vf log2e = vf_set1((float)FLASH_LOG2E);
    int dropout = f->c->dropout > 0.0f;
    uint32_t threshold = dropout_threshold(f->c->dropout);
    vf keep_scale = vf_set1(1.0f / (1.0f - f->c->dropout));
    for (int r0 = 0; r0 < f->br; r0 += VF_W) {
        vf mt = neg_inf;
        for (int j = 0; j < nc; j++) {
            float *s = f->st + (size_t)j * f->br + r0;
            vf x = vf_load(s);
            if (need_vis) {
                x = vf_sel(vi_gt(f->vis + r0, j0 + j), x, neg_inf);
                vf_store(s, x);
            }
            mt = vf_max(mt, x);
        }
        vf m_old = vf_load(f->m + r0);
        vf m_new = vf_max(m_old, vf_mul(mt, log2e));
        vf m_use = vf_sel(vf_eq(m_new, neg_inf), zero, m_new);
        vf a = vf_exp2(vf_sub(m_old, m_use));
        vf sum = zero;
        for (int j = 0; j < nc; j++) {
            float *s = f->st + (size_t)j * f->br + r0;
            vf p = vf_exp2(vf_fmsub(vf_load(s), log2e, m_use));
            sum = vf_add(sum, p);
            if (dropout)
                p = vf_sel(drop_keep_rows(f->key_lo + r0, f->key_hi + r0, j0 + j, threshold),
                           vf_mul(p, keep_scale), zero);
            vf_store(s, p);
        }
        vf_store(f->l + r0, vf_fmadd(a, vf_load(f->l + r0), sum));
        vf_store(f->m + r0, m_new);
        vf_store(f->alpha + r0, a);
    }
}

/* Qᵀ·scale [D][br] from the block's query rows [nr][D]; the padding columns
 * nr..br are zero so the padded lanes of Sᵀ stay finite. */
static void load_queries(const fwd_block *f, const float *Q)
{
    int br = f->br, D = f->c->D, nr = f->nr;
    float scale = f->c->scale;
    for (int d = 0; d < D; d++) {
        float *row = f->qt + (size_t)d * br;
        for (int r = 0; r < nr; r++)
            row[r] = Q[(size_t)r * D + d] * scale;
        for (int r = nr; r < br; r++)
            row[r] = 0.0f;
    }
}

/* Per-row state before the first key tile; returns the block's largest
 * number of visible keys and sets *vis_min to its smallest. */
static int init_rows(const fwd_block *f, int *vis_min)
{
    const attn_call *c = f->c;
    int vmax = 0, vmin = c->Tk;
    for (int r = 0; r < f->br; r++) {
        int n = r < f->nr ? attn_visible_keys(c, f->b, f->i0 + r) : 0;
        f->vis[r] = n;
        if (r < f->nr) {
            vmax = n > vmax ? n : vmax;
            vmin = n < vmin ? n : vmin;
        }
        f->m[r] = -INFINITY;
        f->l[r] = 0.0f;
        uint64_t key = c->dropout > 0.0f ? dropout_row_key(c->seed, c->b0 + f->b, f->h, f->i0 + r) : 0;
        f->key_lo[r] = (uint32_t)key;
        f->key_hi[r] = (uint32_t)(key >> 32);
    }
    *vis_min = vmin;
    return vmax;
}

/* Sᵀ[j][r] += mask[i0+r][j0+j]: the user's additive mask, transposed. */
static void add_mask(const fwd_block *f, int j0, int nc)
{
    int Tk = f->c->Tk;
    for (int r = 0; r < f->nr; r++) {
        const float *mrow = f->c->mask + (size_t)(f->i0 + r) * Tk + j0;
        for (int j = 0; j < nc; j++)
            f->st[(size_t)j * f->br + r] += mrow[j];
    }
}

/* out = O / l and lse = m₂·ln 2 + log l for the block's rows (in double:
 * l is relative to exactly that m₂, so the change of base adds no rounding
 * of its own); a row that saw no visible key (l = 0) gets out = 0 and
 * lse = −inf. */
static void finish_rows(const fwd_block *f, float *out, float *lse)
{
    int D = f->c->D;
    for (int r = 0; r < f->nr; r++) {
        float *dst = out + (size_t)r * D, l = f->l[r];
        if (l > 0.0f) {
            float inv = 1.0f / l;
            for (int d = 0; d < D; d++)
                dst[d] = f->o[(size_t)r * D + d] * inv;
        } else {
            memset(dst, 0, (size_t)D * sizeof *dst);
        }
        if (lse) lse[r] = l > 0.0f ? (float)(f->m[r] * FLASH_LN2 + log(l)) : -INFINITY;
    }
}

/* Rows per group where a tile is partly hidden (below): flash_gemm's
 * register block height, so groups cost no extra blocks. */
#define GROUP_ROWS 6

/*
 * A tile that some rows see only part of (the causal diagonal, kv_len):
 * its two products skip what no row of a group of GROUP_ROWS can see.
 *   Sᵀ: key rows m0.. start at the first query vector with a row that sees
 *       key j0+m0; the vectors before it stay unwritten, and softmax_tile
 *       (need_vis) makes every hidden score −inf whatever was there.
 *   O:  query rows m0.. sum over keys j0 .. max(vis) of the group only:
 *       the terms left out are P = 0 (hidden keys), so O is unchanged.
 * On the causal diagonal each product does ~60 % of the tile's work.
 * vec_vis [br/16]: the most keys any row of each query vector sees.
 */
static void scores_partial(const fwd_block *f, const int *vec_vis, int j0, int nc)
{
    int br = f->br, D = f->c->D, nv = br / VF_W;
    for (int m0 = 0; m0 < nc; m0 += GROUP_ROWS) {
        int mr = nc - m0 < GROUP_ROWS ? nc - m0 : GROUP_ROWS, v0 = 0;
        while (v0 < nv && vec_vis[v0] <= j0 + m0) v0++;
        if (v0 == nv) continue;
        flash_gemm(mr, br - VF_W * v0, D, f->K + (size_t)(j0 + m0) * D, D, 1, f->qt + VF_W * v0,
                   br, f->st + (size_t)m0 * br + VF_W * v0, br, FG_OVERWRITE, NULL);
    }
}

static void values_partial(const fwd_block *f, int j0, int nc, int mode)
{
    int br = f->br, D = f->c->D;
    for (int m0 = 0; m0 < f->nr; m0 += GROUP_ROWS) {
        int mr = f->nr - m0 < GROUP_ROWS ? f->nr - m0 : GROUP_ROWS, vmax = 0;
        for (int r = m0; r < m0 + mr; r++) vmax = f->vis[r] > vmax ? f->vis[r] : vmax;
        int k = vmax - j0 < 0 ? 0 : vmax - j0 < nc ? vmax - j0 : nc;
        flash_gemm(mr, D, k, f->st + m0, 1, br, f->V + (size_t)j0 * D, D, f->o + (size_t)m0 * D, D,
                   mode, f->alpha + m0);
    }
}

/* a[0..n) for a vector load that may run past n (the lanes past it read 0). */
static inline vf load_part(const float *a, int i, int n)
{
    return n - i >= VF_W ? vf_load(a + i) : vf_loadz(vm_prefix(i, n), a + i);
}

/* Keys ahead whose K and V rows the score loop prefetches: decoding reads
 * the cache from memory (the weights streamed since evicted it), in short
 * per-head runs the hardware prefetcher is slow to follow (Zen 5: the
 * pass's share of decoding's samples 4.3 % -> 3.4 % with it). */
#define ONE_QUERY_PREFETCH 8

/*
 * Decoding's call, one query (Tq = 1): in the blocked path below the query
 * would be one lane of sixteen, the other fifteen padding, so here the keys
 * are what varies. A score is the query's dot product with one key row (its
 * lanes summed at the end); up to FLASH_BC·br scores at a time fill Sᵀ's
 * buffer, where the same online softmax as softmax_tile turns them into P
 * (sixteen keys per vector), and O = alpha·O + Σ_j P_j·V_j, one value row
 * per step. Zen 5, 2 threads, cache-resident: 2.5-2.7x the blocked path
 * (12 heads of 64 over 1,024 keys: 40 vs 99 µs; 6 of 48 over 1,000: 14 vs
 * 37 µs); decoding stories15M's dims to 1,000 tokens: 1.16x tok/s.
 */
static void forward_one_query(const fwd_block *f, const float *Q, float *out, float *lse)
{
    const attn_call *c = f->c;
    const vf log2e = vf_set1((float)FLASH_LOG2E), zero = vf_set1(0.0f);
    int D = c->D, n = attn_visible_keys(c, f->b, f->i0), chunk = FLASH_BC * f->br;
    int dv = D / VF_W * VF_W; /* whole vectors of a row, then a tail */
    vmask tail = vm_prefix(dv, D);
    float *q = f->qt, *o = f->o, *s = f->st;
    for (int d = 0; d < D; d++) {
        q[d] = Q[d] * c->scale;
        o[d] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f; /* running max (base 2) and sum */
    for (int j0 = 0; j0 < n; j0 += chunk) {
        int nc = n - j0 < chunk ? n - j0 : chunk;
        const float *mask = c->mask ? c->mask + (size_t)f->i0 * c->Tk + j0 : NULL;
        float mt = -INFINITY;
        for (int j = 0; j < nc; j++) {
            const float *k = f->K + (size_t)(j0 + j) * D;
            if (j + ONE_QUERY_PREFETCH < nc)
                for (int b = 0; b < D * (int)sizeof(float); b += 64) {
                    __builtin_prefetch((const char *)(k + ONE_QUERY_PREFETCH * D) + b);
                    __builtin_prefetch(
                        (const char *)(f->V + (size_t)(j0 + j + ONE_QUERY_PREFETCH) * D) + b);
                }
            vf acc = zero;
            for (int d = 0; d < dv; d += VF_W)
                acc = vf_fmadd(vf_load(q + d), vf_load(k + d), acc);
            if (tail) acc = vf_fmadd(vf_loadz(tail, q + dv), vf_loadz(tail, k + dv), acc);
            float x = vf_hsum(acc) + (mask ? mask[j] : 0.0f);
            s[j] = x;
            mt = x > mt ? x : mt;
        }
        float m_new = fmaxf(m, mt * (float)FLASH_LOG2E);
        float m_use = m_new == -INFINITY ? 0.0f : m_new; /* all hidden so far: 2^(−inf) = 0 */
        float alpha = exp2f(m - m_use);
        vf sum = zero;
        for (int j = 0; j < nc; j += VF_W) {
            vmask live = vm_prefix(j, nc);
            vf p = vf_exp2(vf_fmsub(vf_loadz(live, s + j), log2e, vf_set1(m_use)));
            p = vf_sel(live, p, zero);
            sum = vf_add(sum, p);
            vf_storem(s + j, live, p);
        }
        l = alpha * l + vf_hsum(sum);
        m = m_new;
        /* Four vectors of O at a time in registers, so each value row adds
         * four independent FMAs (one chain per vector would wait on its
         * latency at every key); each element still sums keys in order. */
        vf a = vf_set1(alpha);
        for (int d = 0; d < D; d += 4 * VF_W) {
            vf o0 = vf_mul(a, load_part(o, d, D)), o1 = vf_mul(a, load_part(o, d + VF_W, D));
            vf o2 = vf_mul(a, load_part(o, d + 2 * VF_W, D));
            vf o3 = vf_mul(a, load_part(o, d + 3 * VF_W, D));
            for (int j = 0; j < nc; j++) {
                const float *vr = f->V + (size_t)(j0 + j) * D;
                vf p = vf_set1(s[j]);
                o0 = vf_fmadd(p, load_part(vr, d, D), o0);
                if (d + VF_W < D) o1 = vf_fmadd(p, load_part(vr, d + VF_W, D), o1);
                if (d + 2 * VF_W < D) o2 = vf_fmadd(p, load_part(vr, d + 2 * VF_W, D), o2);
                if (d + 3 * VF_W < D) o3 = vf_fmadd(p, load_part(vr, d + 3 * VF_W, D), o3);
            }
            vf_storem(o + d, vm_prefix(d, D), o0);
            vf_storem(o + d + VF_W, vm_prefix(d + VF_W, D), o1);
            vf_storem(o + d + 2 * VF_W, vm_prefix(d + 2 * VF_W, D), o2);
            vf_storem(o + d + 3 * VF_W, vm_prefix(d + 3 * VF_W, D), o3);
        }
    }
    f->m[0] = m;
    f->l[0] = l;
    finish_rows(f, out, lse);
}

/* One query block of one head: rows i0 .. i0+nr-1. out and lse point at the
 * block's first row. */
static void forward_block(const fwd_block *f, const float *Q, float *out, float *lse)
{
    if (f->c->Tq == 1 && f->c->dropout == 0.0f) {
        forward_one_query(f, Q, out, lse);
        return;
    }
    int br = f->br, D = f->c->D, vis_min;
    int kend = init_rows(f, &vis_min); /* keys >= kend are hidden from every row */
    int vec_vis[FLASH_BR / VF_W];
    for (int v = 0; v < br / VF_W; v++) {
        vec_vis[v] = 0;
        for (int r = VF_W * v; r < VF_W * (v + 1); r++)
            vec_vis[v] = f->vis[r] > vec_vis[v] ? f->vis[r] : vec_vis[v];
    }
    load_queries(f, Q);
    for (int j0 = 0; j0 < kend; j0 += FLASH_BC) {
        int nc = kend - j0 < FLASH_BC ? kend - j0 : FLASH_BC;
        int partial = j0 + nc > vis_min; /* some row does not see every key of the tile */
        int mode = j0 == 0 ? FG_OVERWRITE : FG_ROWSCALE;
        /* Sᵀ [nc][br] = K_j [nc][D] · Qᵀ·scale [D][br] */
        if (partial)
            scores_partial(f, vec_vis, j0, nc);
        else
            flash_gemm(nc, br, D, f->K + (size_t)j0 * D, D, 1, f->qt, br, f->st, br,
                       FG_OVERWRITE, NULL);
        if (f->c->mask) add_mask(f, j0, nc);
        softmax_tile(f, j0, nc, partial);
        /* O [nr][D] = alpha∘O + P [nr][nc] · V_j [nc][D], P read from Pᵀ */
        if (partial)
            values_partial(f, j0, nc, mode);
        else
            flash_gemm(f->nr, D, nc, f->st, 1, br, f->V + (size_t)j0 * D, D, f->o, D, mode,
                       f->alpha);
    }
    finish_rows(f, out, lse);
}

int attn_flash_forward(const attn_call *c, const float *q, const float *k, const float *v,
                       float *out, float *lse)
{
    int nt = flash_threads();
    fwd_layout L = fwd_plan(c);
    unsigned char *ws = alloc_aligned(L.total * (size_t)nt);
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
        fwd_block f = bind_workspace(c, &L, ws + (size_t)omp_get_thread_num() * L.total);
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
    free_aligned(ws);
    return SLM_OK;
}
