//! Parsing of INI files (being written).
