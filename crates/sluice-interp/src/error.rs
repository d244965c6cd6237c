//! Errors of compiling and evaluating templates.

/// A template could not be compiled or evaluated. Every variant names the template text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    /// The template is not valid Jinja.
    #[error("invalid template {template:?}: {message}")]
    Syntax {
        /// The template text.
        template: String,
        /// What the parser reported.
        message: String,
    },
    /// Rendering failed (unknown filter, bad argument, reading through an undefined value...).
    #[error("cannot evaluate template {template:?}: {message}")]
    Render {
        /// The template text.
        template: String,
        /// What went wrong.
        message: String,
    },
    /// The template reads variables that this evaluation does not provide.
    #[error("template {template:?} uses undeclared variables: {}", names.join(", "))]
    UndeclaredVariables {
        /// The template text.
        template: String,
        /// The unknown names.
        names: Vec<String>,
    },
}
