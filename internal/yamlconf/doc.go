// Package yamlconf reads configuration documents strictly: ${ENV} expansion on parsed
// scalars, and decoding into tagged structs key by key, so an unknown key, a
// duplicate or a wrong type is an error naming its full path ("sources[2].path"),
// and no error repeats a value (values may be secrets).
package yamlconf
