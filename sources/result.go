package sources

import "github.com/flagsync/flagsync/flagset"

// AddParsed files what ParseValue returned for key into r: a definition (its
// metadata.source set to origin, the place the daemon found it, even when the value
// carries an older source) or else the overlay.
func (r *Result) AddParsed(key string, origin Origin, def *flagset.Flag, ov *Overlay) {
	if def == nil {
		r.Overlays[key] = *ov
		return
	}
	if def.Metadata == nil {
		def.Metadata = map[string]any{}
	}
	def.Metadata[flagset.MetaSource] = origin.String()
	r.Definitions[key] = def
	r.SetOrigin(key, origin)
}

// SetOrigin records where the definition of key was read.
func (r *Result) SetOrigin(key string, origin Origin) {
	if r.Origins == nil {
		r.Origins = map[string]Origin{}
	}
	r.Origins[key] = origin
}
