//! Model alias definitions (`RUMMY_MODEL_{alias}` settings and `addModel`): the one rule
//! both follow. Kept apart from `llm` so that `config` can apply it without depending on the
//! providers, which themselves are built from `config`'s settings.

/// Every provider rummy knows, by the name `actual` model names start with.
pub const PROVIDER_NAMES: [&str; 4] = ["openai", "ollama", "openrouter", "xai"];

/// Why a model alias definition was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelSpecError {
    #[error(
        "alias must be 1-100 characters without whitespace, '/' or control characters (got {0:?})"
    )]
    Alias(String),
    #[error("actual must be {{provider}}/{{model}}, e.g. openai/gpt-4o (got {0:?})")]
    Actual(String),
    #[error(
        "unknown provider {provider:?} in {actual:?} (known: openai, ollama, openrouter, xai)"
    )]
    UnknownProvider { provider: String, actual: String },
    #[error("contextLength must be a positive integer (got {0})")]
    ContextLength(i64),
}

/// The one rule for model aliases, shared by `RUMMY_MODEL_{alias}` and
/// `addModel`.
pub fn check_model(
    alias: &str,
    actual: &str,
    context_length: Option<i64>,
) -> Result<(), ModelSpecError> {
    check_alias(alias)?;
    let bad = |c: char| c.is_whitespace() || c.is_control();
    let (provider, model) = actual
        .split_once('/')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty() && !actual.contains(bad))
        .ok_or_else(|| ModelSpecError::Actual(actual.to_string()))?;
    if !model.split('/').all(|part| !part.is_empty()) {
        return Err(ModelSpecError::Actual(actual.to_string()));
    }
    if !PROVIDER_NAMES.contains(&provider) {
        return Err(ModelSpecError::UnknownProvider {
            provider: provider.to_string(),
            actual: actual.to_string(),
        });
    }
    match context_length {
        Some(n) if n <= 0 => Err(ModelSpecError::ContextLength(n)),
        _ => Ok(()),
    }
}

/// Aliases name runs (`{alias}_{ms}`) and appear in `run://` paths.
pub fn check_alias(alias: &str) -> Result<(), ModelSpecError> {
    let ok = !alias.is_empty()
        && alias.chars().count() <= 100
        && !alias.contains(|c: char| c.is_whitespace() || c.is_control() || c == '/');
    if ok {
        Ok(())
    } else {
        Err(ModelSpecError::Alias(alias.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_rule() {
        assert_eq!(check_model("local", "openai/qwen3", Some(4096)), Ok(()));
        assert_eq!(
            check_model("r", "openrouter/anthropic/claude", None),
            Ok(())
        );
        assert!(matches!(
            check_model("", "openai/x", None),
            Err(ModelSpecError::Alias(_))
        ));
        assert!(matches!(
            check_model("a b", "openai/x", None),
            Err(ModelSpecError::Alias(_))
        ));
        assert!(matches!(
            check_model("a/b", "openai/x", None),
            Err(ModelSpecError::Alias(_))
        ));
        for bad in ["nomodel", "/x", "openai/", "openai/a b", "openai/a//b"] {
            assert!(
                matches!(check_model("a", bad, None), Err(ModelSpecError::Actual(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            check_model("a", "opnai/gpt-4o", None),
            Err(ModelSpecError::UnknownProvider { .. })
        ));
        assert!(matches!(
            check_model("a", "openai/x", Some(0)),
            Err(ModelSpecError::ContextLength(0))
        ));
    }
}
