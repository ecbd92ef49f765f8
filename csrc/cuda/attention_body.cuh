// Kernel bodies for attention.cuh (included there, inside namespace vllm).
#pragma once

// Phase 1: logits[g][i] = q_g . k_{start+i} for the partition (q pre-scaled in smem).
template <typename T, int D, int CG>
VLLM_D void attn_scores(const AttnParams& p, const int64_t* koff, int n, const float (*qs)[D],
                        float (*logits)[kAttnMaxPart]) {
  using L = HeadLayout<T, D>;
  using V = Vec<T, L::ELEMS>;
  const int lane = threadIdx.x % VLLM_WARP_SIZE;
  const int warp = threadIdx.x / VLLM_WARP_SIZE;
  const int sub = lane / L::LT, l = lane % L::LT;
  const T* kc = static_cast<const T*>(p.k_cache);
  constexpr int STEP = L::TPW * kAttnUnroll;
  for (int base = warp * STEP; base < n; base += L::NWARPS * STEP) {  // warp-uniform loop
    V kv[kAttnUnroll][L::VPL];
#pragma unroll
    for (int u = 0; u < kAttnUnroll; ++u) {
      const int i = base + u * L::TPW + sub;
      if (i < n) {
        const V* row = reinterpret_cast<const V*>(kc + koff[i]);
#pragma unroll
        for (int v = 0; v < L::VPL; ++v) {
          if (l + v * L::LT < L::VECS) kv[u][v] = row[l + v * L::LT];
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kAttnUnroll; ++u) {
      const int i = base + u * L::TPW + sub;
      float dot[CG];
#pragma unroll
      for (int g = 0; g < CG; ++g) dot[g] = 0.f;
      if (i < n) {
#pragma unroll
        for (int v = 0; v < L::VPL; ++v) {
          const int vi = l + v * L::LT;
          if (vi < L::VECS) {
#pragma unroll
            for (int e = 0; e < L::ELEMS; ++e) {
              const float kf = to_float(kv[u][v].v[e]);
#pragma unroll
              for (int g = 0; g < CG; ++g) dot[g] += kf * qs[g][vi * L::ELEMS + e];
            }
          }
        }
      }
      int head;
      const float s = reduce_heads<CG, L::LT>(dot, l, head);
      if ((l & (L::LT / CG - 1)) == 0 && i < n) logits[head][i] = s;
    }
  }
}

// Phase 2: per head, max and sum of exp over the partition; logits become probabilities.
template <int CG>
VLLM_D void attn_softmax(int n, float (*logits)[kAttnMaxPart], float* m_out, float* l_out) {
  const int lane = threadIdx.x % VLLM_WARP_SIZE;
  const int warp = threadIdx.x / VLLM_WARP_SIZE;
  constexpr int NW = kAttnThreads / VLLM_WARP_SIZE;
  for (int g = warp; g < CG; g += NW) {
    float m = -FLT_MAX;
    for (int i = lane; i < n; i += VLLM_WARP_SIZE) m = fmaxf(m, logits[g][i]);
    m = warp_max(m);
    float s = 0.f;
    for (int i = lane; i < n; i += VLLM_WARP_SIZE) {
      const float e = __expf(logits[g][i] - m);
      logits[g][i] = e;
      s += e;
    }
    s = warp_sum(s);
    if (lane == 0) {
      m_out[g] = m;
      l_out[g] = s;
    }
  }
}

// Phase 3: acc[g] += p[g][i] * v_i over the partition, summed into smem `oacc` [CG][D].
template <typename T, int D, int CG>
VLLM_D void attn_values(const AttnParams& p, const int64_t* voff, int n,
                        const float (*probs)[kAttnMaxPart], float (*oacc)[D]) {
  using L = HeadLayout<T, D>;
  using V = Vec<T, L::ELEMS>;
  const int lane = threadIdx.x % VLLM_WARP_SIZE;
  const int warp = threadIdx.x / VLLM_WARP_SIZE;
  const int sub = lane / L::LT, l = lane % L::LT;
  const T* vc = static_cast<const T*>(p.v_cache);
  float acc[CG][L::VPL][L::ELEMS];
#pragma unroll
  for (int g = 0; g < CG; ++g)
#pragma unroll
    for (int v = 0; v < L::VPL; ++v)
#pragma unroll
      for (int e = 0; e < L::ELEMS; ++e) acc[g][v][e] = 0.f;
  constexpr int STEP = L::TPW * kAttnUnroll;
  for (int base = warp * STEP; base < n; base += L::NWARPS * STEP) {
    V vv[kAttnUnroll][L::VPL];
#pragma unroll
    for (int u = 0; u < kAttnUnroll; ++u) {
      const int i = base + u * L::TPW + sub;
      if (i < n) {
        const V* row = reinterpret_cast<const V*>(vc + voff[i]);
#pragma unroll
        for (int v = 0; v < L::VPL; ++v) {
          if (l + v * L::LT < L::VECS) vv[u][v] = row[l + v * L::LT];
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kAttnUnroll; ++u) {
      const int i = base + u * L::TPW + sub;
      if (i >= n) continue;
#pragma unroll
      for (int v = 0; v < L::VPL; ++v) {
        if (l + v * L::LT >= L::VECS) continue;
#pragma unroll
        for (int e = 0; e < L::ELEMS; ++e) {
          const float vf = to_float(vv[u][v].v[e]);
#pragma unroll
          for (int g = 0; g < CG; ++g) acc[g][v][e] += probs[g][i] * vf;
        }
      }
    }
  }
  // Sum the TPW lane groups of the warp, then one atomic per value per warp.
#pragma unroll
  for (int g = 0; g < CG; ++g)
#pragma unroll
    for (int v = 0; v < L::VPL; ++v)
#pragma unroll
      for (int e = 0; e < L::ELEMS; ++e) {
        float a = acc[g][v][e];
#pragma unroll
        for (int m = L::LT; m < VLLM_WARP_SIZE; m <<= 1) a += VLLM_SHFL_XOR(a, m);
        const int vi = l + v * L::LT;
        if (sub == 0 && vi < L::VECS) atomicAdd(&oacc[g][vi * L::ELEMS + e], a);
      }
}

// ONE_PASS: attn_one_pass (K and V streamed together); else scores -> softmax -> values.
template <typename T, int D, int CG, bool ONE_PASS>
__global__ void __launch_bounds__(kAttnThreads, attn_min_blocks(CG))
    paged_attention_kernel(AttnParams p) {
  __shared__ float qs[CG][D];
  __shared__ float logits[ONE_PASS ? 1 : CG][ONE_PASS ? 1 : kAttnMaxPart];
  __shared__ float gm[ONE_PASS ? kAttnThreads / 4 : 1][CG], gl[ONE_PASS ? kAttnThreads / 4 : 1][CG];
  __shared__ float oacc[CG][D];
  __shared__ float ms[CG], ls[CG];
  __shared__ float racc[CG][D], rm[CG], rl[CG];  // running result over this block's partitions
  __shared__ int64_t koff[kAttnMaxPart], voff[kAttnMaxPart];  // element offsets of the rows
  const int t = blockIdx.x;
  // The GQA group is covered by ceil(group / CG) chunks of CG heads; a last partial chunk
  // (group 7 with CG 8, say) computes zero queries for its `CG - valid` missing heads and
  // writes nothing for them.
  const int group = p.num_q_heads / p.num_kv_heads;
  const int chunks = (group + CG - 1) / CG;
  const int kvh = blockIdx.y / chunks;
  const int c0 = (blockIdx.y % chunks) * CG;
  const int hq0 = kvh * group + c0;
  const int valid = min(CG, group - c0);
  if (t >= p.query_start_loc[p.num_seqs]) return;  // padding rows of out stay untouched
  const int s = find_seq(p.query_start_loc, p.num_seqs, t);
  const int ctx = visible_ctx(p, s, t);
  // Splits past the context write nothing; attn_reduce_kernel skips them the same way.
  const int part = seq_part(p, ctx);
  if (p.num_splits > 1 && blockIdx.z * part >= ctx) return;
  const T* q = static_cast<const T*>(p.q) + t * p.q_tok_stride;
  for (int i = threadIdx.x; i < CG * D; i += blockDim.x) {
    const int g = i / D, d = i % D;
    qs[g][d] = g < valid ? to_float(q[(hq0 + g) * p.q_head_stride + d]) * p.scale : 0.f;
  }
  // This block merges partitions z, z + Z, z + 2Z, ... (Z = gridDim.z) of the context, so the
  // grid depends only on the launch shape, never on the context length (graph-capturable). The
  // running result lives in shared memory: registers stay free for the token loops.
  for (int i = threadIdx.x; i < CG * D; i += blockDim.x) racc[i / D][i % D] = 0.f;
  if (threadIdx.x < CG) {
    rm[threadIdx.x] = -FLT_MAX;
    rl[threadIdx.x] = 0.f;
  }
  const int* bt = p.block_tables + s * p.bt_stride;
  for (int start = blockIdx.z * part; start < ctx; start += gridDim.z * part) {
    const int n = min(ctx, start + part) - start;
    for (int i = threadIdx.x; i < CG * D; i += blockDim.x) oacc[i / D][i % D] = 0.f;
    // Resolve the partition's pages once: the token loops then issue no dependent table loads.
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      const int tok = start + i;
      const int64_t phys = bt[tok / p.block_size];
      const int64_t in_block = (static_cast<int64_t>(tok % p.block_size) * p.num_kv_heads + kvh) * D;
      koff[i] = phys * p.kc_block_stride + in_block;
      voff[i] = phys * p.vc_block_stride + in_block;
    }
    __syncthreads();
    if constexpr (ONE_PASS) {
      attn_one_pass<T, D, CG>(p, koff, voff, n, qs, oacc, ms, ls, gm, gl);
    } else {
      attn_scores<T, D, CG>(p, koff, n, qs, logits);
      __syncthreads();
      attn_softmax<CG>(n, logits, ms, ls);
      __syncthreads();
      attn_values<T, D, CG>(p, voff, n, logits, oacc);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < CG * D; i += blockDim.x) {  // merge into the running result
      const int g = i / D, d = i % D;
      const float mx = fmaxf(rm[g], ms[g]);
      racc[g][d] = racc[g][d] * __expf(rm[g] - mx) + oacc[g][d] * __expf(ms[g] - mx);
    }
    __syncthreads();
    if (threadIdx.x < CG) {
      const int g = threadIdx.x;
      const float mx = fmaxf(rm[g], ms[g]);
      rl[g] = rl[g] * __expf(rm[g] - mx) + ls[g] * __expf(ms[g] - mx);
      rm[g] = mx;
    }
    // The next partition's first sync orders these writes before any reuse of ms/ls/oacc.
  }
  __syncthreads();
  for (int i = threadIdx.x; i < valid * D; i += blockDim.x) {
    const int g = i / D, d = i % D;
    const float o = rl[g] > 0.f ? racc[g][d] / rl[g] : 0.f;
    if (p.num_splits == 1) {
      T* out = static_cast<T*>(p.out) + t * p.out_tok_stride + (hq0 + g) * p.out_head_stride;
      out[d] = from_float<T>(o);
    } else {
      const int64_t row =
          (static_cast<int64_t>(t) * p.num_q_heads + hq0 + g) * p.num_splits + blockIdx.z;
      p.tmp_out[row * D + d] = o;
      if (d == 0) {
        p.tmp_ml[row * 2] = rm[g];
        p.tmp_ml[row * 2 + 1] = rl[g];
      }
    }
  }
}

// Merges the per-partition results of one (token, q head): grid (T, Hq), D threads.
template <typename T, int D>
__global__ void attn_reduce_kernel(AttnParams p) {
  const int t = blockIdx.x, h = blockIdx.y, d = threadIdx.x;
  if (t >= p.query_start_loc[p.num_seqs]) return;
  const int ctx = visible_ctx(p, find_seq(p.query_start_loc, p.num_seqs, t), t);
  const int part = seq_part(p, ctx);
  const int used = min(p.num_splits, (ctx + part - 1) / part);
  const int64_t row0 = (static_cast<int64_t>(t) * p.num_q_heads + h) * p.num_splits;
  float m = -FLT_MAX;
  for (int z = 0; z < used; ++z) {
    if (p.tmp_ml[(row0 + z) * 2 + 1] > 0.f) m = fmaxf(m, p.tmp_ml[(row0 + z) * 2]);
  }
  float num = 0.f, den = 0.f;
  for (int z = 0; z < used; ++z) {
    const float l = p.tmp_ml[(row0 + z) * 2 + 1];
    if (l <= 0.f) continue;  // empty partition: its tmp_out was never written
    const float w = l * __expf(p.tmp_ml[(row0 + z) * 2] - m);
    num += w * p.tmp_out[(row0 + z) * D + d];
    den += w;
  }
  T* out = static_cast<T*>(p.out) + t * p.out_tok_stride + h * p.out_head_stride;
  out[d] = from_float<T>(den > 0.f ? num / den : 0.f);
}
