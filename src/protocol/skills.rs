//! Skills and personas: markdown files under `RUMMY_HOME/skills/` and
//! `RUMMY_HOME/personas/`. A skill joins a run as a `skill://{name}`
//! entry; a persona is stored on the run and heads its system prompt.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `skill/add` and `skill/remove` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct SkillAddParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// Skill file name without `.md` (no path separators, no `..`).
    #[schemars(required)]
    pub name: Option<String>,
}

/// `skill/add` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SkillAddResult {
    pub status: super::StatusOk,
    /// The skill's name; its entry is `skill://{name}`.
    pub skill: String,
}

/// `getSkills` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct GetSkillsParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
}

/// One skill attached to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SkillInfo {
    pub name: String,
}

/// One skill or persona file on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HomeFile {
    /// File name without `.md`.
    pub name: String,
    /// Absolute path of the file.
    pub path: String,
}

/// `persona/set` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct PersonaSetParams {
    /// Run alias.
    #[schemars(required)]
    pub run: Option<String>,
    /// Persona file name without `.md` (no path separators, no `..`).
    pub name: Option<String>,
    /// Persona text; wins over `name`. Neither (or empty text) clears the persona.
    pub text: Option<String>,
}
