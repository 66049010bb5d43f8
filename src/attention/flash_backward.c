/*
 * Flash attention backward pass: FlashAttention-2 (Dao 2023), Algorithm 2.
 *
 * For a block of keys K_j, V_j [bc][D] and each query tile Q_i, dO_i [br][D]
 * that can see it, recomputing P from the lse the forward pass saved:
 *   S   = Q_i·K_jᵀ·scale (+ mask)                  [br][bc]
 *   P   = exp(S − lse_i)                           softmax, never stored whole
 *                                                  (as 2^(S·log2 e − lse_i·log2 e))
 *   dV_j += (P∘Z)ᵀ·dO_i                            Z = dropout keep/(1−p)
 *   dP  = dO_i·V_jᵀ                                [br][bc]
 *   dS  = P∘(dP∘Z − Δ_i),  Δ_i = rowsum(dO_i∘O_i) (Alg. 2 line 4, eq. in §3.1)
 *   dQ_i += dS·K_j·scale,  dK_j += dSᵀ·Q_i·scale
 * dK_j and dV_j accumulate straight into the caller's dk, dv rows, which
 * only the thread owning key block j touches.
 *
 * Layout choice: the key block is stored transposed, Kᵀ·scale and Vᵀ
 * [D][bc], so keys are vector lanes in S and dP; the other three products
 * read P or dS as broadcast scalars (by rows or by columns) and need no
 * transposition at all.
 *
 * bf16 inputs (attention_bf16.h): each head's Q, K, V and O are widened
 * into the thread's workspace as the head starts, so the whole tensors are
 * never copied to fp32 and the copies are still in L2 when the tiles read
 * them.
 *
 * Parallelism and dQ: with enough heads, each thread takes whole heads and
 * accumulates dQ straight into dq. With few heads (B·H not a multiple of the
 * thread count and below 4 per thread) the key blocks of one head are
 * spread over the threads; each accumulates dQ into a private [Tq][D]
 * buffer, and the buffers are summed in thread order after the head, so the
 * result is the same for a given thread count.
 */
/* First, in a block of its own: it renames this copy's functions. */
#include "attention/flash_isa.h"

#include "attention/flash_internal.h"
#include "attention/flash_simd.h"
#include "core/alloc.h"
#include "kernels/bf16.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* One thread's workspace, offsets in floats (each 64-byte aligned). */
typedef struct {
    int bc;       /* keys per block: min(FLASH_BC, Tk rounded up to 16)       */
    int split;    /* key blocks of a head spread over threads (private dQ)   */
    size_t kt;    /* Kᵀ·scale  [D][bc]                                       */
    size_t vt;    /* Vᵀ        [D][bc]                                       */
    size_t p;     /* S, then P∘Z  [FLASH_BR][bc]                             */
    size_t ds;    /* dP, then dS·scale  [FLASH_BR][bc]                       */
    size_t delta; /* Δ = rowsum(dO∘O)  [Tq]                                  */
    size_t dq;    /* private dQ  [Tq][D] (split only)                        */
    size_t q, o;  /* Q, O widened from bf16  [Tq][D] each (bf16 inputs only) */
    size_t k, v;  /* K, V widened from bf16  [Tk][D] each (bf16 inputs only) */
    size_t total;
} bwd_layout;

static bwd_layout bwd_plan(const attn_call *c, int nt)
{
    bwd_layout L;
    int bc = (c->Tk + 15) / 16 * 16;
    L.bc = bc < FLASH_BC ? bc : FLASH_BC;
    long heads = (long)c->B * c->H;
    L.split = nt > 1 && heads % nt != 0 && heads < 4L * nt;
    size_t bc_ = (size_t)L.bc, D = (size_t)c->D, at = 0;
    L.kt = at, at += flash_line(D * bc_);
    L.vt = at, at += flash_line(D * bc_);
    L.p = at, at += flash_line((size_t)FLASH_BR * bc_);
    L.ds = at, at += flash_line((size_t)FLASH_BR * bc_);
    L.delta = at, at += flash_line((size_t)c->Tq);
    L.dq = at, at += L.split ? flash_line((size_t)c->Tq * D) : 0;
    size_t widen_q = c->q16 ? flash_line((size_t)c->Tq * D) : 0;
    size_t widen_k = c->q16 ? flash_line((size_t)c->Tk * D) : 0;
    L.q = at, at += widen_q;
    L.o = at, at += widen_q;
    L.k = at, at += widen_k;
    L.v = at, at += widen_k;
    L.total = at;
    return L;
}

size_t flash_backward_bytes(const attn_call *c, int nt)
{
    return bwd_plan(c, nt).total * (size_t)nt * sizeof(float);
}

/* One head's tensors and the thread's workspace. */
typedef struct {
    const attn_call *c;
    const bwd_layout *L;
    float *ws;
    int b, h;
    const float *Q, *K, *V, *O, *dO, *lse; /* this head's rows */
    float *dQ, *dK, *dV;                   /* dQ: dq or the private buffer */
} bwd_head;

/* Δ_i = Σ_d dO_id·O_id for every query of the head (Alg. 2 line 4). */
static void row_deltas(const bwd_head *g)
{
    int Tq = g->c->Tq, D = g->c->D;
    float *delta = g->ws + g->L->delta;
    for (int i = 0; i < Tq; i++) {
        const float *o = g->O + (size_t)i * D, *d_o = g->dO + (size_t)i * D;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int d = 0; d < D; d++)
            s += d_o[d] * o[d];
        delta[i] = s;
    }
}

/* Kᵀ·scale and Vᵀ [D][bc] for keys j0 .. j0+nc-1; padding columns are 0. */
static void load_keys(const bwd_head *g, int j0, int nc)
{
    int bc = g->L->bc, D = g->c->D;
    float *Kt = g->ws + g->L->kt, *Vt = g->ws + g->L->vt;
    float scale = g->c->scale;
    const float *K = g->K + (size_t)j0 * D, *V = g->V + (size_t)j0 * D;
    for (int d = 0; d < D; d++) {
        float *kr = Kt + (size_t)d * bc, *vr = Vt + (size_t)d * bc;
        for (int j = 0; j < nc; j++) {
            kr[j] = K[(size_t)j * D + d] * scale;
            vr[j] = V[(size_t)j * D + d];
        }
        for (int j = nc; j < bc; j++)
            kr[j] = vr[j] = 0.0f;
    }
}

/*
 * Rows i0 .. i0+nr-1 against keys j0 .. j0+bc-1: turns S into P∘Z and dP
 * into dS·scale in place (Alg. 2 lines 11–14), sixteen keys per vector.
 * Hidden keys (causal, kv_len, padding past Tk, −inf mask) get P = 0, and a
 * row with lse = −inf (nothing visible) gets zeros, so no NaN is formed.
 * vis_of [nr]: the keys each row sees (attn_visible_keys).
 */
static void softmax_grad_tile(const bwd_head *g, const int *vis_of, int i0, int nr, int j0)
{
    const attn_call *c = g->c;
    int bc = g->L->bc, Tk = c->Tk;
    float *P = g->ws + g->L->p, *dS = g->ws + g->L->ds;
    const float *delta = g->ws + g->L->delta;
    int dropout = c->dropout > 0.0f;
    uint32_t threshold = dropout_threshold(c->dropout);
    vf keep_scale = vf_set1(1.0f / (1.0f - c->dropout)), scale = vf_set1(c->scale);
    const vf zero = vf_set1(0.0f), log2e = vf_set1((float)FLASH_LOG2E);
    for (int r = 0; r < nr; r++) {
        int i = i0 + r;
        float *p_row = P + (size_t)r * bc, *ds_row = dS + (size_t)r * bc;
        int vis = vis_of[r];
        float row_lse = g->lse[i];
        if (vis <= j0 || row_lse == -INFINITY) {
            memset(p_row, 0, (size_t)bc * sizeof *p_row);
            memset(ds_row, 0, (size_t)bc * sizeof *ds_row);
            continue;
        }
        /* lse·log2 e as hi + lo floats: S·log2 e − hi is one FMA, exact
         * where P matters (S·log2 e near hi), so the change of base costs
         * no accuracy even at scores of hundreds. */
        double l2 = row_lse * FLASH_LOG2E;
        float l2_hi = (float)l2;
        vf lhi = vf_set1(l2_hi), llo = vf_set1((float)(l2 - l2_hi)), dlt = vf_set1(delta[i]);
        uint64_t key = dropout ? dropout_row_key(c->seed, c->b0 + g->b, g->h, i) : 0;
        const float *mrow = c->mask ? c->mask + (size_t)i * Tk : NULL;
        for (int v = 0; v < bc; v += VF_W) {
            int jj = j0 + v;
            vf s = vf_load(p_row + v);
            if (mrow) s = vf_add(s, vf_loadz(vm_prefix(jj, Tk), mrow + jj));
            vmask seen = vm_prefix(jj, vis);
            vf p = vf_sel(seen, vf_exp2(vf_sub(vf_fmsub(s, log2e, lhi), llo)), zero);
            vf dp = vf_load(ds_row + v);
            if (dropout) {
                vmask keep = drop_keep_cols(key, jj, threshold);
                dp = vf_sel(keep, vf_mul(dp, keep_scale), zero);
                vf_store(p_row + v, vf_sel(keep, vf_mul(p, keep_scale), zero));
            } else {
                vf_store(p_row + v, p);
            }
            /* hidden lanes: 0 whatever dP held (a partial tile leaves
             * them unwritten, below) */
            vf_store(ds_row + v, vf_sel(seen, vf_mul(vf_mul(p, vf_sub(dp, dlt)), scale), zero));
        }
    }
}

/* First query that can see key j0 under causal + kv_len (visibility grows
 * with i), or Tq if none can. */
static int first_query(const attn_call *c, int b, int j0)
{
    if (c->kv_len && c->kv_len[b] <= j0) return c->Tq;
    if (!c->causal) return 0;
    long i = (long)j0 - (c->Tk - c->Tq);
    return i < 0 ? 0 : i < c->Tq ? (int)i : c->Tq;
}

/* Rows per group where a tile is partly hidden (below): flash_gemm's
 * register block height, so groups cost no extra blocks. */
#define GROUP_ROWS 6

/* The most keys any of rows [r0, r1) sees. */
static int group_vis(const int *vis, int r0, int r1)
{
    int m = 0;
    for (int r = r0; r < r1; r++) m = vis[r] > m ? vis[r] : m;
    return m;
}

/*
 * The five products of a tile that some query rows see only part of (the
 * causal diagonal, kv_len), skipping what no group of GROUP_ROWS rows can
 * see: S and dP of a group of query rows only up to the group's last
 * visible key (softmax_grad_tile zeroes the lanes left unwritten); dV and
 * dK of a group of keys only from the first query that sees its first key;
 * dQ of a group of queries only up to its last visible key. Every term
 * left out has P = 0 and dS = 0, so the sums are unchanged. On the causal
 * diagonal each product does ~60 % of the tile's work.
 */
static void tile_products_partial(const bwd_head *g, const int *vis, int i0, int nr, int j0,
                                  int nc, int mode)
{
    const bwd_layout *L = g->L;
    int bc = L->bc, D = g->c->D;
    float *P = g->ws + L->p, *dS = g->ws + L->ds;
    const float *Qi = g->Q + (size_t)i0 * D, *dOi = g->dO + (size_t)i0 * D;
    const float *Kj = g->K + (size_t)j0 * D;
    float *dK = g->dK + (size_t)j0 * D, *dV = g->dV + (size_t)j0 * D;
    for (int m0 = 0; m0 < nr; m0 += GROUP_ROWS) {
        int m1 = m0 + GROUP_ROWS < nr ? m0 + GROUP_ROWS : nr;
        int n = group_vis(vis, m0, m1) - j0;
        n = n < 0 ? 0 : n < nc ? n : nc;
        if (n == 0) continue;
        flash_gemm(m1 - m0, n, D, Qi + (size_t)m0 * D, D, 1, g->ws + L->kt, bc,
                   P + (size_t)m0 * bc, bc, FG_OVERWRITE, NULL);
        flash_gemm(m1 - m0, n, D, dOi + (size_t)m0 * D, D, 1, g->ws + L->vt, bc,
                   dS + (size_t)m0 * bc, bc, FG_OVERWRITE, NULL);
    }
    softmax_grad_tile(g, vis, i0, nr, j0);
    for (int m0 = 0; m0 < nc; m0 += GROUP_ROWS) {
        int mr = nc - m0 < GROUP_ROWS ? nc - m0 : GROUP_ROWS, k0 = 0;
        while (k0 < nr && vis[k0] <= j0 + m0) k0++; /* rows before k0 see none of the group */
        flash_gemm(mr, D, nr - k0, P + (size_t)k0 * bc + m0, 1, bc, dOi + (size_t)k0 * D, D,
                   dV + (size_t)m0 * D, D, mode, NULL);
        flash_gemm(mr, D, nr - k0, dS + (size_t)k0 * bc + m0, 1, bc, Qi + (size_t)k0 * D, D,
                   dK + (size_t)m0 * D, D, mode, NULL);
    }
    for (int m0 = 0; m0 < nr; m0 += GROUP_ROWS) {
        int m1 = m0 + GROUP_ROWS < nr ? m0 + GROUP_ROWS : nr;
        int k = group_vis(vis, m0, m1) - j0;
        k = k < 0 ? 0 : k < nc ? k : nc;
        if (k > 0)
            flash_gemm(m1 - m0, D, k, dS + (size_t)m0 * bc, bc, 1, Kj, D,
                       g->dQ + (size_t)(i0 + m0) * D, D, FG_ACCUMULATE, NULL);
    }
}

/* Key block kb of a head: writes dK, dV rows j0 .. j0+nc-1 and adds this
 * block's share of dQ into g->dQ. */
static void backward_key_block(const bwd_head *g, int kb)
{
    const attn_call *c = g->c;
    const bwd_layout *L = g->L;
    int bc = L->bc, D = c->D, Tq = c->Tq;
    int j0 = kb * bc, nc = c->Tk - j0 < bc ? c->Tk - j0 : bc;
    float *dK = g->dK + (size_t)j0 * D, *dV = g->dV + (size_t)j0 * D;
    const float *Kj = g->K + (size_t)j0 * D;
    float *P = g->ws + L->p, *dS = g->ws + L->ds;
    int i_first = first_query(c, g->b, j0);
    if (i_first >= Tq) { /* no query sees these keys */
        memset(dK, 0, (size_t)nc * D * sizeof *dK);
        memset(dV, 0, (size_t)nc * D * sizeof *dV);
        return;
    }
    load_keys(g, j0, nc);
    for (int i0 = i_first; i0 < Tq; i0 += FLASH_BR) {
        int nr = Tq - i0 < FLASH_BR ? Tq - i0 : FLASH_BR;
        int mode = i0 == i_first ? FG_OVERWRITE : FG_ACCUMULATE;
        const float *Qi = g->Q + (size_t)i0 * D, *dOi = g->dO + (size_t)i0 * D;
        int vis[FLASH_BR], partial = 0;
        for (int r = 0; r < nr; r++) {
            vis[r] = attn_visible_keys(c, g->b, i0 + r);
            partial |= vis[r] < j0 + nc;
        }
        if (partial) {
            tile_products_partial(g, vis, i0, nr, j0, nc, mode);
            continue;
        }
        /* S [nr][bc] = Q_i·Kᵀ·scale;  dP [nr][bc] = dO_i·Vᵀ */
        flash_gemm(nr, bc, D, Qi, D, 1, g->ws + L->kt, bc, P, bc, FG_OVERWRITE, NULL);
        flash_gemm(nr, bc, D, dOi, D, 1, g->ws + L->vt, bc, dS, bc, FG_OVERWRITE, NULL);
        softmax_grad_tile(g, vis, i0, nr, j0);
        /* dV_j [nc][D] += (P∘Z)ᵀ·dO_i;  dK_j += (dS·scale)ᵀ·Q_i  (P, dS read by columns) */
        flash_gemm(nc, D, nr, P, 1, bc, dOi, D, dV, D, mode, NULL);
        flash_gemm(nc, D, nr, dS, 1, bc, Qi, D, dK, D, mode, NULL);
        /* dQ_i [nr][D] += (dS·scale) [nr][nc] · K_j [nc][D] */
        flash_gemm(nr, D, nc, dS, bc, 1, Kj, D, g->dQ + (size_t)i0 * D, D, FG_ACCUMULATE, NULL);
    }
}

/* Points g at head `head` of the call's tensors; with bf16 inputs, Q, K, V
 * and O point at the head widened into the thread's workspace. */
static void bind_head(bwd_head *g, size_t head, const float *q, const float *k, const float *v,
                      const float *out, const float *lse, const float *dout, float *dq, float *dk,
                      float *dv)
{
    const attn_call *c = g->c;
    size_t qd = (size_t)c->Tq * c->D, kd = (size_t)c->Tk * c->D;
    g->b = (int)(head / (size_t)c->H);
    g->h = (int)(head % (size_t)c->H);
    if (c->q16) {
        float *wq = g->ws + g->L->q, *wo = g->ws + g->L->o;
        float *wk = g->ws + g->L->k, *wv = g->ws + g->L->v;
        bf16_widen_array(wq, c->q16 + head * qd, qd);
        bf16_widen_array(wo, c->out16 + head * qd, qd);
        bf16_widen_array(wk, c->k16 + head * kd, kd);
        bf16_widen_array(wv, c->v16 + head * kd, kd);
        g->Q = wq, g->O = wo, g->K = wk, g->V = wv;
    } else {
        g->Q = q + head * qd, g->O = out + head * qd;
        g->K = k + head * kd, g->V = v + head * kd;
    }
    g->dO = dout + head * qd;
    g->lse = lse + head * (size_t)c->Tq;
    g->dQ = dq ? dq + head * qd : g->ws + g->L->dq;
    g->dK = dk + head * kd, g->dV = dv + head * kd;
}

/* Split mode, after a head's key blocks: dst [Tq][D] = Σ over the team's
 * private dQ buffers, added in thread order (so the result depends only on
 * the thread count), zeroing each buffer for the next head. Called by every
 * thread of the team; the rows are shared out between them. */
static void reduce_dq(const attn_call *c, const bwd_layout *L, float *ws, int team, float *dst)
{
    int D = c->D;
#pragma omp for schedule(static)
    for (int i = 0; i < c->Tq; i++) {
        float *row = dst + (size_t)i * D;
        memset(row, 0, (size_t)D * sizeof *row);
        for (int t = 0; t < team; t++) {
            float *part = ws + (size_t)t * L->total + L->dq + (size_t)i * D;
            for (int d = 0; d < D; d++)
                row[d] += part[d];
            memset(part, 0, (size_t)D * sizeof *part);
        }
    }
}

int attn_flash_backward(const attn_call *c, const float *q, const float *k, const float *v,
                        const float *out, const float *lse, const float *dout, float *dq, float *dk,
                        float *dv)
{
    int nt = flash_threads();
    bwd_layout L = bwd_plan(c, nt);
    float *ws = alloc_aligned(L.total * (size_t)nt * sizeof(float));
    if (!ws) return SLM_ENOMEM;
    long heads = (long)c->B * c->H;
    int nkb = (c->Tk + L.bc - 1) / L.bc;
    size_t qd = (size_t)c->Tq * c->D;
#pragma omp parallel num_threads(nt)
    {
        int tid = omp_get_thread_num();
        bwd_head g = {.c = c, .L = &L, .ws = ws + (size_t)tid * L.total};
        if (!L.split) {
            /* Whole heads per thread: dQ accumulates straight into dq. */
#pragma omp for schedule(dynamic, 1)
            for (long head = 0; head < heads; head++) {
                bind_head(&g, (size_t)head, q, k, v, out, lse, dout, dq, dk, dv);
                memset(g.dQ, 0, qd * sizeof(float));
                row_deltas(&g);
                for (int kb = 0; kb < nkb; kb++)
                    backward_key_block(&g, kb);
            }
        } else {
            float *mine = g.ws + L.dq;
            memset(mine, 0, qd * sizeof(float));
            for (long head = 0; head < heads; head++) {
                bind_head(&g, (size_t)head, q, k, v, out, lse, dout, NULL, dk, dv);
                row_deltas(&g);
                /* Round-robin key blocks: under causal masking early blocks
                 * have the most queries, so blocks alternate across threads. */
#pragma omp for schedule(static, 1)
                for (int kb = 0; kb < nkb; kb++)
                    backward_key_block(&g, kb);
                reduce_dq(c, &L, ws, omp_get_num_threads(), dq + (size_t)head * qd);
            }
        }
    }
    free_aligned(ws);
    return SLM_OK;
}
