use crate::Method;

/// Everything that can go wrong when combining task gradients. Messages are one line, fit to
/// show a user as they are.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolverError {
    #[error("no tasks: K must be at least 1")]
    NoTasks,
    #[error("the Gram matrix must be square: it has {rows} rows but row {row} has {len} entries")]
    NotSquare { rows: usize, row: usize, len: usize },
    #[error("a {k} x {k} matrix needs {} entries, got {len}", k * k)]
    WrongLength { k: usize, len: usize },
    #[error("a {k} x {p} Jacobian needs {} entries, got {len}", k * p)]
    JacobianLength { k: usize, p: usize, len: usize },
    #[error("the Jacobian has no columns: each task's gradient needs at least one entry")]
    EmptyJacobian,
    #[error("the Gram matrix must be symmetric: M[{i}][{j}] = {a:e} but M[{j}][{i}] = {b:e}")]
    NotSymmetric { i: usize, j: usize, a: f64, b: f64 },
    #[error("the Gram matrix has a negative diagonal entry M[{i}][{i}] = {value:e}")]
    NegativeDiagonal { i: usize, value: f64 },
    #[error("the Jacobian's rows must have equal length: row 0 has {expected} entries, row {row} has {got}")]
    RaggedJacobian { expected: usize, row: usize, got: usize },
    #[error("the {what} contain(s) a non-finite value at index {index}")]
    NonFinite { what: &'static str, index: usize },
    #[error("{what} has {got} tasks, expected {expected}")]
    TaskCount { what: &'static str, expected: usize, got: usize },
    #[error("{method} needs {what}")]
    Missing { method: Method, what: &'static str },
    #[error("{method} needs positive losses, but task {task} has loss {value:e}")]
    NonPositiveLoss { method: Method, task: usize, value: f64 },
    #[error("invalid {name} = {value}: {reason}")]
    InvalidParameter { name: &'static str, value: f64, reason: String },
    #[error("{method} does not take {option}")]
    UnusedOption { method: Method, option: &'static str },
    #[error("{method} produced non-finite weights")]
    NonFiniteResult { method: Method },
    #[error("unknown method '{0}' (expected one of: {list})", list = Method::names().join(", "))]
    UnknownMethod(String),
    #[error("unknown {what} '{value}' (expected one of: {expected})")]
    UnknownValue { what: &'static str, value: String, expected: &'static str },
    #[error("invalid {method} state: {reason}")]
    BadState { method: Method, reason: String },
}
