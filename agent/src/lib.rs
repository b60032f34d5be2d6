//! Multi-task Soft Actor-Critic on libtorch.
