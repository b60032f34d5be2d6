// Counts the operators libtorch's dispatcher runs, through libtorch's own observer
// (RecordFunction): exact, not an estimate. An op is a top-level call of an ATen operator on its
// thread (scope FUNCTION at depth 0): `linear` counts once, not again for the `addmm` it calls.
// The autograd engine's record of each backward node (`autograd::engine::evaluate_function: ...`)
// is transparent: the ops the node runs count, as top-level ops, on the thread that runs them.
// Metadata queries the dispatcher does not observe (`size`, `is_leaf`, ...) are not ops.
#include <ATen/record_function.h>

#include <atomic>
#include <cstdint>
#include <cstring>

namespace {

std::atomic<int64_t> ops{0};
thread_local int64_t depth = 0;
at::CallbackHandle handle = 0;

bool is_backward_node(const at::RecordFunction& fn) {
    static const char prefix[] = "autograd::engine::evaluate_function: ";
    return std::strncmp(fn.name(), prefix, sizeof(prefix) - 1) == 0;
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    if (is_backward_node(fn)) {
        return nullptr;
    }
    if (depth++ == 0) {
        ops.fetch_add(1, std::memory_order_relaxed);
    }
    return nullptr;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext*) {
    if (!is_backward_node(fn)) {
        --depth;
    }
}

}  // namespace

extern "C" {

// Starts counting from zero (idempotent while counting). Not thread-safe against other threads
// starting or stopping the count; ops on any thread are counted.
void mt10_op_counter_start() {
    ops.store(0);
    if (handle == 0) {
        handle = at::addGlobalCallback(
            at::RecordFunctionCallback(on_start, on_end).needsInputs(false).needsOutputs(false).scopes({at::RecordScope::FUNCTION}));
    }
}

// Stops counting; returns the ops since the start.
int64_t mt10_op_counter_stop() {
    if (handle != 0) {
        at::removeCallback(handle);
        handle = 0;
    }
    return ops.load();
}

}
