// CUDA kernels of the CuPy backend: the hash specification of docs/hashing.md
// (sk_hashednets/_kernels/_hashing.py), virtual-matrix tiles and bucket-gradient
// scatters.
//
// The hash helpers are __host__ __device__ so that the test suite can compile
// them for the CPU with nvcc and check them bit for bit against the NumPy
// specification, on machines without a GPU. No #include: the file compiles
// with NVRTC (CuPy's RawModule) as well as nvcc.
//
// Indices: a row i and a column j are separate 32-bit words of the hashed key,
// so a virtual matrix may have 2**32 rows and 2**32 columns. Positions inside a
// tile are 64-bit (a tile may hold more than 2**31 entries).

typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

#define HD __host__ __device__ __forceinline__

// ---------------------------------------------------------------------------
// The specification: MurmurHash3_x86_32 of le32(i) || le32(j), split into a
// per-row and a per-column part.
// ---------------------------------------------------------------------------

#define SK_BLOCK_SIZE 16u

HD u32 sk_rotl32(u32 x, int r) { return (x << r) | (x >> (32 - r)); }

HD u32 sk_column_key(u32 j) {
    u32 k = j * 0xCC9E2D51u;
    k = sk_rotl32(k, 15);
    return k * 0x1B873593u;
}

HD u32 sk_mix_block(u32 h, u32 k) {
    h ^= k;
    h = sk_rotl32(h, 13);
    return h * 5u + 0xE6546B64u;
}

HD u32 sk_row_state(u32 seed, u32 i) { return sk_mix_block(seed, sk_column_key(i)); }

HD u32 sk_finish_hash(u32 state, u32 key_j) {
    u32 h = sk_mix_block(state, key_j);
    h ^= 8u;  // key length in bytes
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

// Multiply-high range reduction to [0, K).
HD u32 sk_bucket_of(u32 h, u32 n_buckets) {
    return (u32)(((u64)h * (u64)n_buckets) >> 32);
}

// Bucket and sign bit (1: negative) of entry (i, j), element hashing.
HD void sk_hash_element(u32 seed, u32 sign_seed, u32 i, u32 j, u32 n_buckets,
                        u32 *bucket, u32 *negative) {
    u32 key = sk_column_key(j);
    *bucket = sk_bucket_of(sk_finish_hash(sk_row_state(seed, i), key), n_buckets);
    *negative = sk_finish_hash(sk_row_state(sign_seed, i), key) >> 31;
}

// Block hashing: the BLOCK_SIZE entries j = 16 b + o of row i read buckets
// (start(i, b) + o) % K, with sign bit o of the block's sign hash.
HD void sk_hash_block(u32 seed, u32 sign_seed, u32 i, u32 j, u32 n_buckets,
                      u32 *bucket, u32 *negative) {
    u32 key = sk_column_key(j / SK_BLOCK_SIZE);
    u32 offset = j % SK_BLOCK_SIZE;
    u64 b = (u64)sk_bucket_of(sk_finish_hash(sk_row_state(seed, i), key), n_buckets) + offset;
    *bucket = (u32)(b < n_buckets ? b : b % n_buckets);
    *negative = (sk_finish_hash(sk_row_state(sign_seed, i), key) >> offset) & 1u;
}

HD void sk_hash(int block, u32 seed, u32 sign_seed, u32 i, u32 j, u32 n_buckets,
                u32 *bucket, u32 *negative) {
    if (block) {
        sk_hash_block(seed, sign_seed, i, j, n_buckets, bucket, negative);
    } else {
        sk_hash_element(seed, sign_seed, i, j, n_buckets, bucket, negative);
    }
}

// ---------------------------------------------------------------------------
// Kernels. One thread per tile entry, grid-stride loops over 64-bit positions.
// ---------------------------------------------------------------------------

// (bucket, sign) of index pairs: the specification on the device, for tests.
extern "C" __global__ void hash_pairs(const u32 *i, const u32 *j, i64 n, u32 seed,
                                      u32 sign_seed, u32 n_buckets, int block,
                                      u32 *bucket, signed char *sign) {
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < n;
         t += (i64)gridDim.x * blockDim.x) {
        u32 b, neg;
        sk_hash(block, seed, sign_seed, i[t], j[t], n_buckets, &b, &neg);
        bucket[t] = b;
        sign[t] = neg ? -1 : 1;
    }
}

// out[r, c] = s(i, j) * w[h(i, j)] for i = row_start + r, j = col_start + c.
template <typename T>
__device__ void materialize_tile(const T *w, u32 n_buckets, u32 seed, u32 sign_seed,
                                 int sign_hash, int block, u64 row_start, u64 col_start,
                                 i64 n_rows, i64 n_cols, T *out) {
    i64 n = n_rows * n_cols;
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < n;
         t += (i64)gridDim.x * blockDim.x) {
        i64 r = t / n_cols, c = t - r * n_cols;
        u32 b, neg;
        sk_hash(block, seed, sign_seed, (u32)(row_start + r), (u32)(col_start + c), n_buckets,
                &b, &neg);
        T value = w[b];
        out[t] = (sign_hash && neg) ? -value : value;
    }
}

// The bucket of gradient-tile entry t (row row_start + r, column c of a full-width
// tile) and the gradient with its sign applied.
template <typename T>
__device__ __forceinline__ T signed_gradient(const T *grad, i64 t, i64 n_cols, u32 n_buckets,
                                             u32 seed, u32 sign_seed, int sign_hash, int block,
                                             u64 row_start, u32 *bucket) {
    i64 r = t / n_cols, c = t - r * n_cols;
    u32 neg;
    sk_hash(block, seed, sign_seed, (u32)(row_start + r), (u32)c, n_buckets, bucket, &neg);
    T g = grad[t];
    return (sign_hash && neg) ? -g : g;
}

// bucket_grad[h(i, j)] += s(i, j) * grad[r, c], with global atomics: for
// bucket vectors too large for shared memory.
template <typename T>
__device__ void scatter_global(const T *grad, u32 n_buckets, u32 seed, u32 sign_seed,
                               int sign_hash, int block, u64 row_start, i64 n_rows, i64 n_cols,
                               T *bucket_grad) {
    i64 n = n_rows * n_cols;
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < n;
         t += (i64)gridDim.x * blockDim.x) {
        u32 b;
        T g = signed_gradient(grad, t, n_cols, n_buckets, seed, sign_seed, sign_hash, block,
                              row_start, &b);
        atomicAdd(bucket_grad + b, g);
    }
}

// The same sum, accumulated per thread block in shared memory (the whole bucket
// vector must fit: n_buckets * sizeof(T) bytes of dynamic shared memory), then
// added to the global vector once per block and bucket.
template <typename T>
__device__ void scatter_shared(const T *grad, u32 n_buckets, u32 seed, u32 sign_seed,
                               int sign_hash, int block, u64 row_start, i64 n_rows, i64 n_cols,
                               T *bucket_grad) {
    extern __shared__ unsigned char sk_shared_bytes[];
    T *acc = reinterpret_cast<T *>(sk_shared_bytes);
    for (u32 k = threadIdx.x; k < n_buckets; k += blockDim.x) acc[k] = T(0);
    __syncthreads();
    i64 n = n_rows * n_cols;
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < n;
         t += (i64)gridDim.x * blockDim.x) {
        u32 b;
        T g = signed_gradient(grad, t, n_cols, n_buckets, seed, sign_seed, sign_hash, block,
                              row_start, &b);
        atomicAdd(acc + b, g);
    }
    __syncthreads();
    for (u32 k = threadIdx.x; k < n_buckets; k += blockDim.x) {
        if (acc[k] != T(0)) atomicAdd(bucket_grad + k, acc[k]);
    }
}

// extern "C" entry points per dtype, so that RawModule finds them by name.
#define SK_KERNELS(T, SUFFIX)                                                                  \
    extern "C" __global__ void materialize_tile_##SUFFIX(                                    \
        const T *w, u32 n_buckets, u32 seed, u32 sign_seed, int sign_hash, int block,       \
        u64 row_start, u64 col_start, i64 n_rows, i64 n_cols, T *out) {                     \
        materialize_tile<T>(w, n_buckets, seed, sign_seed, sign_hash, block, row_start,     \
                            col_start, n_rows, n_cols, out);                                \
    }                                                                                        \
    extern "C" __global__ void scatter_global_##SUFFIX(                                      \
        const T *grad, u32 n_buckets, u32 seed, u32 sign_seed, int sign_hash, int block,    \
        u64 row_start, i64 n_rows, i64 n_cols, T *bucket_grad) {                            \
        scatter_global<T>(grad, n_buckets, seed, sign_seed, sign_hash, block, row_start,    \
                          n_rows, n_cols, bucket_grad);                                     \
    }                                                                                        \
    extern "C" __global__ void scatter_shared_##SUFFIX(                                      \
        const T *grad, u32 n_buckets, u32 seed, u32 sign_seed, int sign_hash, int block,    \
        u64 row_start, i64 n_rows, i64 n_cols, T *bucket_grad) {                            \
        scatter_shared<T>(grad, n_buckets, seed, sign_seed, sign_hash, block, row_start,    \
                          n_rows, n_cols, bucket_grad);                                     \
    }

SK_KERNELS(float, f32)
SK_KERNELS(double, f64)
