//! Scenario files: the TOML schema, parsing with located errors, and semantic validation.
