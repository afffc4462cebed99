//! Parsing of env files (being written).
