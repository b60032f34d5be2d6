//! The env a config file names, and building it.

use serde::{Deserialize, Serialize};

use crate::{EnvError, MetaWorldConfig, MultiTaskEnv, ToyConfig, ToyEnv};

/// `kind = "toy"` or `kind = "metaworld"`, then that env's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EnvConfig {
    Toy(ToyConfig),
    #[serde(rename = "metaworld")]
    MetaWorld(MetaWorldConfig),
}

impl Default for EnvConfig {
    fn default() -> Self {
        Self::MetaWorld(MetaWorldConfig::default())
    }
}

/// Builds the env, seeded. For MetaWorld this starts the embedded interpreter and checks the
/// Python set-up first ([`EnvError::PythonSetup`] says what is wrong and how to fix it).
pub fn build_env(config: &EnvConfig, seed: u64) -> Result<Box<dyn MultiTaskEnv>, EnvError> {
    match config {
        EnvConfig::Toy(toy) => Ok(Box::new(ToyEnv::new(toy.clone(), seed)?)),
        #[cfg(feature = "metaworld")]
        EnvConfig::MetaWorld(mw) => Ok(Box::new(crate::metaworld::MetaWorldEnv::new(mw, seed)?)),
        #[cfg(not(feature = "metaworld"))]
        EnvConfig::MetaWorld(_) => Err(EnvError::MetaWorldDisabled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Preset, RewardNormalization};

    #[test]
    fn configs_round_trip_through_serde_with_defaults_filled_in() {
        let toy: EnvConfig = serde_json::from_str(r#"{"kind": "toy", "num_tasks": 3}"#).unwrap();
        assert_eq!(
            toy,
            EnvConfig::Toy(ToyConfig {
                num_tasks: 3,
                ..ToyConfig::default()
            })
        );
        let mw: EnvConfig = serde_json::from_str(
            r#"{"kind": "metaworld", "tasks": ["reach", "push"], "reward_normalization": {"method": "none"}}"#,
        )
        .unwrap();
        let expected = MetaWorldConfig {
            tasks: vec!["reach".into(), "push".into()],
            reward_normalization: RewardNormalization::None,
            ..Preset::Mtrl.config()
        };
        assert_eq!(mw, EnvConfig::MetaWorld(expected));
        let text = serde_json::to_string(&EnvConfig::MetaWorld(Preset::Plus.config())).unwrap();
        assert_eq!(
            serde_json::from_str::<EnvConfig>(&text).unwrap(),
            EnvConfig::MetaWorld(Preset::Plus.config())
        );
        assert!(serde_json::from_str::<EnvConfig>(r#"{"kind": "toy", "num_taks": 3}"#).is_err());
    }

    #[test]
    fn toy_envs_build_from_config() {
        let env = build_env(&EnvConfig::Toy(ToyConfig::default()), 1).unwrap();
        assert_eq!(env.spec().num_tasks(), 4);
    }
}
