package lint

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Formats of Write.
const (
	FormatText   = "text"
	FormatJSON   = "json"
	FormatGitHub = "github"
)

// Write renders findings as text (file:line: severity [rule] flag: message), JSON (an
// array) or GitHub Actions workflow commands (::error file=…,line=…,title=…::message).
func Write(w io.Writer, format string, findings []Finding) error {
	switch format {
	case FormatJSON:
		if findings == nil {
			findings = []Finding{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(findings)
	case FormatGitHub:
		for _, f := range findings {
			cmd := "error"
			if f.Severity == SeverityWarning {
				cmd = "warning"
			}
			props := "file=" + ghProp(f.File)
			if f.Line > 0 {
				props += fmt.Sprintf(",line=%d", f.Line)
			}
			props += ",title=" + ghProp("flagsync lint: "+f.Rule)
			if _, err := fmt.Fprintf(w, "::%s %s::%s\n", cmd, props, ghData(message(f))); err != nil {
				return err
			}
		}
		return nil
	case FormatText, "":
		for _, f := range findings {
			loc := f.File
			if f.Line > 0 {
				loc += fmt.Sprintf(":%d", f.Line)
			}
			if _, err := fmt.Fprintf(w, "%s: %s [%s] %s\n", loc, f.Severity, f.Rule, message(f)); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown format %q (want text, json or github)", format)
}

func message(f Finding) string {
	if f.Flag != "" {
		return f.Flag + ": " + f.Message
	}
	return f.Message
}

// ghData escapes a workflow command's message.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProp escapes a workflow command's property value.
func ghProp(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// Count returns the number of errors and warnings.
func Count(findings []Finding) (errors, warnings int) {
	for _, f := range findings {
		if f.Severity == SeverityError {
			errors++
		} else {
			warnings++
		}
	}
	return errors, warnings
}
