// CUDA on the CPU, for tests: enough of the CUDA C++ dialect that a .cu file of
// __global__ kernels compiles, unchanged, with the host compiler and runs there.
//
//     g++ -std=c++20 -O2 -fPIC -shared -include cuda_emulation.h -x c++ kernels.cu
//
// A launch (sk_emu::launch) runs the grid's blocks one after the other, and a
// block's threads as coroutines on one OS thread, each on its own stack (x86-64:
// a context switch of a few instructions, below): __syncthreads() switches to
// the next thread of the block, and the block goes past the barrier only when
// every thread of the block has reached it. A block whose thread 0 ends without
// a barrier runs its other threads as plain calls (a barrier there is an error).
// After each barrier the threads resume in the opposite order, so that code
// that needs a barrier it does not have gives a wrong result rather than a
// lucky one. Dynamic shared memory (extern __shared__ T name[]) is a buffer per
// name, defined by whoever generates the launchers (see tests/fake_cupy), filled
// with 0xFF bytes (NaN for floats) before each block: a kernel that reads what
// it did not write sees NaN, and one that writes past the bytes the launch
// asked for is reported. atomicAdd is std::atomic_ref's fetch_add, atomicMin a
// compare-exchange loop on it.
//
// Not emulated: static __shared__ arrays, warps (__shfl*, __ballot*), streams,
// and data races (the threads never run at the same time).

#pragma once

#if !defined(__x86_64__)
#error "cuda_emulation.h: its context switch is written for x86-64"
#endif

#include <atomic>
#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <sys/mman.h>

#define __global__
#define __device__
#define __host__
#define __shared__
#define __forceinline__ inline __attribute__((always_inline))

struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};
typedef dim3 uint3;

namespace sk_emu {

inline dim3 grid_dim, block_dim, block_idx, thread_idx;

// Largest dynamic shared memory a launch may ask for without opting in.
constexpr std::size_t max_shared_bytes = 48 * 1024;
constexpr unsigned int max_threads = 1024;
constexpr std::size_t stack_bytes = 64 * 1024;

// --- context switch (x86-64 System V): save the callee-saved registers and the
// --- FPU control words on the current stack, store its pointer, load another.
extern "C" void sk_emu_switch(void **save_sp, void *load_sp);
asm(R"(
    .text
    .globl sk_emu_switch
    .hidden sk_emu_switch
    .type sk_emu_switch, @function
sk_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size sk_emu_switch, .-sk_emu_switch
)");

enum class state { running, at_barrier, done };

struct block_state {
    void (*body)(void *) = nullptr;
    void *closure = nullptr;
    void *scheduler_sp = nullptr;
    void *sp[max_threads];
    state st[max_threads];
    unsigned int current = 0;
    unsigned int n_threads = 0;
    unsigned char *stacks = nullptr;  // max_threads stacks, each above a guard page
    const char *error = nullptr;
    bool direct = false;  // the block's threads run as plain calls: no barrier allowed
    std::jmp_buf direct_exit;
};

inline block_state blk;
inline char error_text[256];

inline const char *fail(const char *message) {
    blk.error = message;
    return message;
}

inline void set_thread_idx(unsigned int t) {
    if (block_dim.x == blk.n_threads) {  // a 1-D block: no divisions
        thread_idx.x = t;
        return;
    }
    thread_idx.x = t % block_dim.x;
    thread_idx.y = t / block_dim.x % block_dim.y;
    thread_idx.z = t / (block_dim.x * block_dim.y);
}

[[noreturn]] inline void thread_entry() {
    blk.body(blk.closure);
    blk.st[blk.current] = state::done;
    sk_emu_switch(&blk.sp[blk.current], blk.scheduler_sp);
    __builtin_unreachable();
}

// A fresh stack for thread t whose first switch "returns" into thread_entry.
inline void *initial_sp(unsigned int t) {
    std::size_t page = 4096;
    // Tops staggered by cache lines: stacks a whole number of pages apart would
    // all compete for the same cache sets.
    auto *top = blk.stacks + (t + 1) * (stack_bytes + page) - (t % 64) * 64;
    auto **sp = reinterpret_cast<void **>(top);
    *--sp = nullptr;                                        // thread_entry's return address
    *--sp = reinterpret_cast<void *>(&thread_entry);        // sk_emu_switch's return address
    for (int r = 0; r < 6; ++r) *--sp = nullptr;            // rbp rbx r12 r13 r14 r15
    --sp;
    std::uint32_t control[2];
    asm volatile("stmxcsr %0" : "=m"(control[0]));
    asm volatile("fnstcw %0" : "=m"(control[1]));
    std::memcpy(sp, control, sizeof control);
    return sp;
}

inline bool allocate_stacks() {
    if (blk.stacks) return true;
    std::size_t page = 4096, size = max_threads * (stack_bytes + page);
    void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    blk.stacks = static_cast<unsigned char *>(p);
    for (unsigned int t = 0; t < max_threads; ++t)  // a guard page below each stack
        mprotect(blk.stacks + t * (stack_bytes + page), page, PROT_NONE);
    return true;
}

inline void resume(unsigned int t) {
    blk.current = t;
    blk.st[t] = state::running;
    set_thread_idx(t);
    sk_emu_switch(&blk.scheduler_sp, blk.sp[t]);
}

// Runs one block to its end; nullptr, or what went wrong. Thread 0 runs first,
// on its own stack: if it ends without reaching a barrier, so must the others,
// and they run as plain calls (fast); else every thread gets a stack.
inline const char *run_block(unsigned int n_threads) {
    blk.sp[0] = initial_sp(0);
    resume(0);
    if (blk.st[0] == state::done) {
        blk.direct = true;
        if (setjmp(blk.direct_exit) != 0) {
            blk.direct = false;
            return fail("__syncthreads() reached by some threads of a block only");
        }
        for (unsigned int t = 1; t < n_threads; ++t) {
            blk.current = t;
            set_thread_idx(t);
            blk.body(blk.closure);
        }
        blk.direct = false;
        return nullptr;
    }
    for (unsigned int t = 1; t < n_threads; ++t) {
        blk.sp[t] = initial_sp(t);
        resume(t);
    }
    for (bool reverse = true;; reverse = !reverse) {
        unsigned int waiting = 0, done = 0;
        for (unsigned int t = 0; t < n_threads; ++t) {
            waiting += blk.st[t] == state::at_barrier;
            done += blk.st[t] == state::done;
        }
        if (waiting == 0) return nullptr;
        if (done != 0) return fail("__syncthreads() reached by some threads of a block only");
        for (unsigned int k = 0; k < n_threads; ++k) resume(reverse ? n_threads - 1 - k : k);
    }
}

inline void check_shared(std::initializer_list<unsigned char *> buffers, std::size_t bytes) {
    static unsigned char untouched[max_shared_bytes];
    if (untouched[0] != 0xFF) std::memset(untouched, 0xFF, max_shared_bytes);
    for (unsigned char *buffer : buffers) {
        if (std::memcmp(buffer + bytes, untouched, max_shared_bytes - bytes) == 0) continue;
        std::size_t k = bytes;
        while (buffer[k] == 0xFF) ++k;
        std::snprintf(error_text, sizeof error_text,
                      "the kernel wrote shared memory byte %zu, past the %zu bytes (shared_mem) "
                      "of its launch",
                      k, bytes);
        fail(error_text);
    }
}

// Runs body(closure) once per thread of the grid; nullptr, or what went wrong.
inline const char *launch(dim3 grid, dim3 block, std::size_t shared_bytes,
                          std::initializer_list<unsigned char *> shared_buffers,
                          void (*body)(void *), void *closure) {
    unsigned long long n_threads = 1ull * block.x * block.y * block.z;
    if (n_threads == 0 || n_threads > max_threads) return "a block must have 1 to 1024 threads";
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return "a grid must have at least one block";
    if (shared_bytes > max_shared_bytes) return "shared_mem above 48 KiB needs an opt-in";
    if (!allocate_stacks()) return "could not map the threads' stacks";
    grid_dim = grid;
    block_dim = block;
    thread_idx = dim3{0, 0, 0};
    blk.n_threads = static_cast<unsigned int>(n_threads);
    blk.body = body;
    blk.closure = closure;
    blk.error = nullptr;
    for (unsigned int z = 0; z < grid.z; ++z)
        for (unsigned int y = 0; y < grid.y; ++y)
            for (unsigned int x = 0; x < grid.x; ++x) {
                block_idx = dim3{x, y, z};
                for (unsigned char *buffer : shared_buffers)
                    std::memset(buffer, 0xFF, max_shared_bytes);
                if (run_block(static_cast<unsigned int>(n_threads))) return blk.error;
                check_shared(shared_buffers, shared_bytes);
                if (blk.error) return blk.error;
            }
    return nullptr;
}

}  // namespace sk_emu

#define gridDim (::sk_emu::grid_dim)
#define blockDim (::sk_emu::block_dim)
#define blockIdx (::sk_emu::block_idx)
#define threadIdx (::sk_emu::thread_idx)

inline void __syncthreads() {
    using namespace sk_emu;
    if (blk.direct) std::longjmp(blk.direct_exit, 1);
    blk.st[blk.current] = state::at_barrier;
    sk_emu_switch(&blk.sp[blk.current], blk.scheduler_sp);
}

template <typename T>
inline T atomicAdd(T *address, T value) {
    return std::atomic_ref<T>(*address).fetch_add(value);
}

template <typename T>
inline T atomicMin(T *address, T value) {
    std::atomic_ref<T> target(*address);
    T old = target.load();
    while (value < old && !target.compare_exchange_weak(old, value)) {
    }
    return old;
}
