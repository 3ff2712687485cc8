// Package config defines paygate's configuration: the types, their defaults,
// loading from YAML and validation.
//
// Loading is strict because a typo in a payment gateway's config is a money bug:
// unknown keys are errors, every error names file:line and the key's path, and
// secrets may come from the environment (${VAR}, ${VAR:-default}) or from files
// (every "*_file" key). Environment references are expanded inside the parsed
// YAML scalars, never textually, so a value containing ": " or "#" cannot change
// the document's structure and line numbers stay true. No error prints the
// value of a secret's key or of a "*_file" key (secretKey).
//
// The package imports nothing of paygate; every other package may import it.
package config
