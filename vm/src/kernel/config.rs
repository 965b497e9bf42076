//! Parses a kernel `.config` and answers whether an option is built in.
//!
//! Only the two line shapes Kconfig writes matter: `CONFIG_X=value` and
//! `# CONFIG_X is not set`. Anything else (comments, blank lines) is ignored.

use std::collections::BTreeMap;

/// The option every ktstr guest kernel needs.
pub const SCHED_EXT: &str = "CONFIG_SCHED_CLASS_EXT";

/// A parsed kernel configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelConfig {
    values: BTreeMap<String, String>,
}

impl KernelConfig {
    pub fn parse(text: &str) -> Self {
        let mut values = BTreeMap::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix("# ").and_then(|l| l.strip_suffix(" is not set"))
            {
                if name.starts_with("CONFIG_") {
                    values.insert(name.to_string(), "n".to_string());
                }
            } else if let Some((name, value)) = line.split_once('=')
                && name.starts_with("CONFIG_")
            {
                values.insert(name.to_string(), value.trim_matches('"').to_string());
            }
        }
        KernelConfig { values }
    }

    /// The value of `name` (`y`, `m`, `n`, a number or a string); `None` if the config does not
    /// mention it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether `name` is built into the kernel (`=y`); a module does not count.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.get(name) == Some("y")
    }

    /// Whether this looks like a kernel config at all.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_builtin_module_unset_and_string_values() {
        let config = KernelConfig::parse(
            "#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_SCHED_CLASS_EXT=y\n\
             CONFIG_VIRTIO_BLK=m\n# CONFIG_IKCONFIG is not set\nCONFIG_LOCALVERSION=\"-test\"\n\
             CONFIG_NR_CPUS=512\n\n",
        );
        assert!(config.is_builtin(SCHED_EXT));
        assert_eq!(config.get("CONFIG_VIRTIO_BLK"), Some("m"));
        assert!(!config.is_builtin("CONFIG_VIRTIO_BLK"));
        assert_eq!(config.get("CONFIG_IKCONFIG"), Some("n"));
        assert_eq!(config.get("CONFIG_LOCALVERSION"), Some("-test"));
        assert_eq!(config.get("CONFIG_NR_CPUS"), Some("512"));
        assert_eq!(config.get("CONFIG_MISSING"), None);
        assert!(!config.is_empty());
    }

    #[test]
    fn text_that_is_not_a_config_is_empty() {
        assert!(KernelConfig::parse("hello\nworld=1\n# not a config\n").is_empty());
    }
}
