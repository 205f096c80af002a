package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/phonepipe/phonepipe/domain/phone"
)

// buildVersion is the module version, or "dev" for a source build.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// buildCommit is the VCS revision stamped by the Go toolchain, if any.
func buildCommit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func version(w io.Writer) error {
	_, err := fmt.Fprintf(w, "phonepipe %s\ncommit %s\nphone metadata %s\n", buildVersion(), buildCommit(), phone.MetadataVersion())
	return err
}
