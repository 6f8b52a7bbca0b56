// CUDA kernels of the CuPy backend: the hash specification of docs/hashing.md
// (sk_hashednets/_kernels/_hashing.py), sharded hashing included, virtual-matrix
// tiles and bucket-gradient scatters (unsharded: shared-memory or global atomics;
// sharded: one thread block per shard and chunk of its buckets, no global atomics,
// the CPU's order of additions).
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

// Element hashing: the bucket of entry (i, j), and its sign bit (1: negative).
HD u32 sk_element_bucket(u32 seed, u32 i, u32 j, u32 n_buckets) {
    return sk_bucket_of(sk_finish_hash(sk_row_state(seed, i), sk_column_key(j)), n_buckets);
}

HD u32 sk_element_negative(u32 sign_seed, u32 i, u32 j) {
    return sk_finish_hash(sk_row_state(sign_seed, i), sk_column_key(j)) >> 31;
}

// Block hashing: the BLOCK_SIZE entries j = 16 b + o of row i read buckets
// (start(i, b) + o) % K, with sign bit o of the block's sign hash.
HD u32 sk_block_bucket(u32 seed, u32 i, u32 j, u32 n_buckets) {
    u32 key = sk_column_key(j / SK_BLOCK_SIZE);
    u64 b = (u64)sk_bucket_of(sk_finish_hash(sk_row_state(seed, i), key), n_buckets) +
            j % SK_BLOCK_SIZE;
    return (u32)(b < n_buckets ? b : b % n_buckets);
}

HD u32 sk_block_negative(u32 sign_seed, u32 i, u32 j) {
    u32 key = sk_column_key(j / SK_BLOCK_SIZE);
    return (sk_finish_hash(sk_row_state(sign_seed, i), key) >> (j % SK_BLOCK_SIZE)) & 1u;
}

// The bucket (in [0, K)) and the sign bit of entry (i, j) under either scheme,
// apart: a scatter that keeps only some buckets hashes the sign of those only.
HD u32 sk_bucket(int block, u32 seed, u32 i, u32 j, u32 n_buckets) {
    return block ? sk_block_bucket(seed, i, j, n_buckets)
                 : sk_element_bucket(seed, i, j, n_buckets);
}

HD u32 sk_negative(int block, u32 sign_seed, u32 i, u32 j) {
    return block ? sk_block_negative(sign_seed, i, j) : sk_element_negative(sign_seed, i, j);
}

// Bucket and sign bit of entry (i, j), under each scheme and under either.
HD void sk_hash_element(u32 seed, u32 sign_seed, u32 i, u32 j, u32 n_buckets, u32 *bucket,
                        u32 *negative) {
    *bucket = sk_element_bucket(seed, i, j, n_buckets);
    *negative = sk_element_negative(sign_seed, i, j);
}

HD void sk_hash_block(u32 seed, u32 sign_seed, u32 i, u32 j, u32 n_buckets, u32 *bucket,
                      u32 *negative) {
    *bucket = sk_block_bucket(seed, i, j, n_buckets);
    *negative = sk_block_negative(sign_seed, i, j);
}

HD void sk_hash(int block, u32 seed, u32 sign_seed, u32 i, u32 j, u32 n_buckets,
                u32 *bucket, u32 *negative) {
    if (block) {
        sk_hash_block(seed, sign_seed, i, j, n_buckets, bucket, negative);
    } else {
        sk_hash_element(seed, sign_seed, i, j, n_buckets, bucket, negative);
    }
}

// Sharded hashing (spec v2 and v3): the rows cut into windows of `period` rows,
// each window split into S blocks of consecutive rows, block s of every window
// in shard s, which owns buckets [s K / S, (s + 1) K / S). period = S is v3's
// cyclic layout (row i in shard i % S), period = the matrix's rows v2's
// contiguous one. Every product fits in 64 bits (i, S, K, period < 2**32).
// S = 1 is the unsharded hash.
HD u64 sk_shard_of_row(u64 i, u32 period, u32 n_shards) {
    return ((i % period + 1) * n_shards - 1) / period;
}

// The shards with rows in [row_start, row_stop): (first + t) % S for t < count.
HD void sk_tile_shards(u64 row_start, u64 row_stop, u32 period, u32 n_shards, u64 *first,
                       u64 *count) {
    u64 last = sk_shard_of_row(row_stop - 1, period, n_shards);
    u64 windows = (row_stop - 1) / period - row_start / period;
    *first = sk_shard_of_row(row_start, period, n_shards);
    if (windows == 0) {
        *count = last - *first + 1;
    } else {
        u64 wrapped = (u64)n_shards - *first + last + 1;
        *count = windows == 1 && wrapped < n_shards ? wrapped : (u64)n_shards;
    }
}

// Rows of `shard` below row x: its rows, in order, are numbered from 0, and
// the g-th is row (g / c) * period + a + g % c (a, c: its block in a window).
HD u64 sk_shard_rows_below(u64 x, u64 shard, u32 period, u32 n_shards) {
    u64 a = shard * period / n_shards, c = (shard + 1) * period / n_shards - a;
    u64 r = x % period;
    u64 in_window = r <= a ? 0 : (r - a < c ? r - a : c);
    return x / period * c + in_window;
}

// First bucket and bucket count of shard s.
HD void sk_shard_buckets(u64 shard, u32 n_shards, u32 n_buckets, u32 *first, u32 *count) {
    u64 lo = shard * n_buckets / n_shards;
    *first = (u32)lo;
    *count = (u32)((shard + 1) * n_buckets / n_shards - lo);
}

// First bucket and bucket count of the shard of row i: (0, K) unsharded.
HD void sk_row_shard(u32 i, u32 period, u32 n_shards, u32 n_buckets, u32 *first, u32 *count) {
    if (n_shards == 1u) {
        *first = 0u;
        *count = n_buckets;
        return;
    }
    sk_shard_buckets(sk_shard_of_row(i, period, n_shards), n_shards, n_buckets, first, count);
}

// Bucket (in [0, K)) and sign bit of entry (i, j) under S shards of the given period.
HD void sk_hash_sharded(int block, u32 seed, u32 sign_seed, u32 i, u32 j, u32 n_buckets,
                        u32 n_shards, u32 period, u32 *bucket, u32 *negative) {
    u32 first, count;
    sk_row_shard(i, period, n_shards, n_buckets, &first, &count);
    sk_hash(block, seed, sign_seed, i, j, count, bucket, negative);
    *bucket += first;
}

// ---------------------------------------------------------------------------
// Kernels. Grid-stride loops over 64-bit positions. A layer's hash is the
// arguments n_buckets, seed, sign_seed, sign_hash, block, and, where the kernel
// implements shards, n_shards and shard_period (the period of the shards' rows:
// S under v3's cyclic layout, the matrix's rows under v2's contiguous one; any
// value >= 1 when n_shards = 1).
// ---------------------------------------------------------------------------

// (bucket, sign) of index pairs: the specification on the device, for tests.
extern "C" __global__ void hash_pairs(const u32 *i, const u32 *j, i64 n, u32 seed,
                                      u32 sign_seed, u32 n_buckets, int block, u32 n_shards,
                                      u32 shard_period, u32 *bucket, signed char *sign) {
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < n;
         t += (i64)gridDim.x * blockDim.x) {
        u32 b, neg;
        sk_hash_sharded(block, seed, sign_seed, i[t], j[t], n_buckets, n_shards, shard_period, &b,
                        &neg);
        bucket[t] = b;
        sign[t] = neg ? -1 : 1;
    }
}

// out[r, c] = s(i, j) * w[h(i, j)] for i = row_start + r, j = col_start + c. One
// thread per tile entry.
template <typename T>
__device__ void materialize_tile(const T *w, u32 n_buckets, u32 seed, u32 sign_seed,
                                 int sign_hash, int block, u32 n_shards, u32 shard_period,
                                 u64 row_start, u64 col_start, i64 n_rows, i64 n_cols, T *out) {
    i64 n = n_rows * n_cols;
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < n;
         t += (i64)gridDim.x * blockDim.x) {
        i64 r = t / n_cols, c = t - r * n_cols;
        u32 b, neg;
        sk_hash_sharded(block, seed, sign_seed, (u32)(row_start + r), (u32)(col_start + c),
                        n_buckets, n_shards, shard_period, &b, &neg);
        T value = w[b];
        out[t] = (sign_hash && neg) ? -value : value;
    }
}

// The bucket of gradient-tile entry t (row row_start + r, column c of a full-width
// tile) and the gradient with its sign applied: the unsharded hash.
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
// bucket vectors too large for shared memory (unsharded hash).
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
// added to the global vector once per block and bucket (unsharded hash).
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

// bucket_grad[h_S(i, j)] += s(i, j) * grad[r, c] under sharded hashing: no global
// atomics, and the sums of the CPU (scatter_shards of _numba.py) bit for bit.
//
// Work units: (a shard that the tile's rows touch, a chunk of chunk_buckets
// consecutive buckets of that shard), unit u being chunk u % n_chunks of the
// tile's (u / n_chunks)-th shard. One thread block takes a unit at a time
// (grid-stride over units): it loads the chunk of bucket_grad into shared memory,
// goes over the shard's rows of the tile, and stores the chunk back; within a
// launch no other block touches those buckets. A shard larger than a chunk takes
// one pass over its rows per chunk, in parallel blocks: each pass hashes the
// bucket of every entry, and sign-hashes and reads only the entries of its chunk.
//
// The order of the additions is fixed: each bucket receives its entries in
// row-major order, as on the CPU. The block reads the rows in batches of
// blockDim.x consecutive entries (entry t of a batch to thread t); within a batch
// the entries go in rounds, and in each round every pending entry bids for its
// bucket's slot (the bucket modulo n_slots, a power of two) with atomicMin of its
// thread index: the lowest bidder of each slot adds its entry, the others wait
// for a later round. Entries of one bucket share a slot, so they are added in
// thread order, i.e. row-major order. A batch takes as many rounds as the most
// of its pending entries that share a slot (a few, with 256 entries among 1024
// slots), three barriers each.
//
// Dynamic shared memory: chunk_buckets T (the accumulators), n_slots u32 (the
// bids), 3 u32 (a flag per round: "some entry is still pending", round mod 3, so
// that a flag is cleared two rounds before it is set again).
#define SK_NOBODY 0xFFFFFFFFu

template <typename T>
__device__ void scatter_shards(const T *grad, u32 n_buckets, u32 seed, u32 sign_seed,
                               int sign_hash, int block, u32 n_shards, u32 shard_period,
                               u64 row_start, i64 n_rows, i64 n_cols, u32 chunk_buckets,
                               u32 n_chunks, u32 n_slots, T *bucket_grad) {
    extern __shared__ unsigned char sk_shared_bytes[];
    T *acc = reinterpret_cast<T *>(sk_shared_bytes);
    u32 *bid = reinterpret_cast<u32 *>(acc + chunk_buckets);
    u32 *pending_in = bid + n_slots;
    for (u32 s = threadIdx.x; s < n_slots; s += blockDim.x) bid[s] = SK_NOBODY;
    if (threadIdx.x < 3) pending_in[threadIdx.x] = 0u;
    u32 round = 0;  // counts on across batches and units: the flags' index
    u64 row_stop = row_start + (u64)n_rows;
    u64 first_shard, n_tile_shards;
    sk_tile_shards(row_start, row_stop, shard_period, n_shards, &first_shard, &n_tile_shards);
    i64 n_units = (i64)(n_tile_shards * n_chunks);
    for (i64 unit = blockIdx.x; unit < n_units; unit += gridDim.x) {
        u64 shard = (first_shard + (u64)unit / n_chunks) % n_shards;
        u64 chunk_first = (u64)(unit % n_chunks) * chunk_buckets;  // within the shard
        u32 first, count;
        sk_shard_buckets(shard, n_shards, n_buckets, &first, &count);
        if (chunk_first >= count) continue;  // a smaller shard: fewer chunks (whole block)
        u32 width = (u32)(count - chunk_first < chunk_buckets ? count - chunk_first
                                                               : chunk_buckets);
        T *out = bucket_grad + first + chunk_first;
        for (u32 k = threadIdx.x; k < width; k += blockDim.x) acc[k] = out[k];
        __syncthreads();
        // The shard's rows within the tile, in order: its rows g_lo..g_hi - 1
        // (sk_shard_rows_below), the g-th at (g / c) * period + a + g % c.
        u64 a = shard * shard_period / n_shards;
        u64 c = (shard + 1) * shard_period / n_shards - a;
        u64 g_lo = sk_shard_rows_below(row_start, shard, shard_period, n_shards);
        u64 g_hi = sk_shard_rows_below(row_stop, shard, shard_period, n_shards);
        i64 n = (i64)(g_hi - g_lo) * n_cols;
        for (i64 batch = 0; batch < n; batch += blockDim.x) {
            i64 t = batch + threadIdx.x;
            bool pending = false;
            u32 k = 0;
            T g = T(0);
            if (t < n) {
                i64 m = t / n_cols, col = t - m * n_cols;
                u64 row = g_lo + (u64)m;
                u32 i = (u32)(row / c * shard_period + a + row % c);
                k = sk_bucket(block, seed, i, (u32)col, count) - (u32)chunk_first;
                if (k < width) {  // else another chunk's (unsigned: below it too)
                    g = grad[(i64)(i - row_start) * n_cols + col];
                    if (sign_hash && sk_negative(block, sign_seed, i, (u32)col)) g = -g;
                    pending = true;
                }
            }
            u32 slot = k & (n_slots - 1);
            for (;;) {
                if (pending) atomicMin(bid + slot, threadIdx.x);
                if (threadIdx.x == 0) pending_in[(round + 1) % 3] = 0u;
                __syncthreads();  // the bids are in
                bool won = pending && bid[slot] == threadIdx.x;
                if (won) acc[k] += g;
                __syncthreads();  // every bid is read
                if (won) {
                    bid[slot] = SK_NOBODY;
                    pending = false;
                }
                if (pending) pending_in[round % 3] = 1u;
                __syncthreads();  // the flag is set
                bool again = pending_in[round % 3] != 0u;
                ++round;
                if (!again) break;
            }
        }
        for (u32 k = threadIdx.x; k < width; k += blockDim.x) out[k] = acc[k];
        __syncthreads();  // the next unit loads acc
    }
}

// extern "C" entry points per dtype, so that RawModule finds them by name.
#define SK_KERNELS(T, SUFFIX)                                                                  \
    extern "C" __global__ void materialize_tile_##SUFFIX(                                    \
        const T *w, u32 n_buckets, u32 seed, u32 sign_seed, int sign_hash, int block,       \
        u32 n_shards, u32 shard_period, u64 row_start, u64 col_start, i64 n_rows, i64 n_cols, \
        T *out) {                                                                            \
        materialize_tile<T>(w, n_buckets, seed, sign_seed, sign_hash, block, n_shards,      \
                            shard_period, row_start, col_start, n_rows, n_cols, out);        \
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
    }                                                                                        \
    extern "C" __global__ void scatter_shards_##SUFFIX(                                      \
        const T *grad, u32 n_buckets, u32 seed, u32 sign_seed, int sign_hash, int block,    \
        u32 n_shards, u32 shard_period, u64 row_start, i64 n_rows, i64 n_cols,               \
        u32 chunk_buckets, u32 n_chunks, u32 n_slots, T *bucket_grad) {                     \
        scatter_shards<T>(grad, n_buckets, seed, sign_seed, sign_hash, block, n_shards,     \
                          shard_period, row_start, n_rows, n_cols, chunk_buckets, n_chunks,  \
                          n_slots, bucket_grad);                                            \
    }

SK_KERNELS(float, f32)
SK_KERNELS(double, f64)
