package flagset

import "encoding/json"

// DeclaredVersion reads the revision (metadata.version) and generation
// (metadata.flagsync.generation) a JSON document declares, without decoding its
// flags: "" and 0 when data is not a JSON object or declares none. A writer uses
// it to learn what a file it is about to replace holds.
func DeclaredVersion(data []byte) (revision string, generation int64) {
	var doc struct {
		Metadata struct {
			Version    string      `json:"version"`
			Generation json.Number `json:"flagsync.generation"`
		} `json:"metadata"`
	}
	if json.Unmarshal(data, &doc) != nil {
		return "", 0
	}
	gen, _ := doc.Metadata.Generation.Int64()
	if gen == 0 { // written as a float by a non-canonical writer
		g, _ := doc.Metadata.Generation.Float64()
		gen = int64(g)
	}
	return doc.Metadata.Version, gen
}
