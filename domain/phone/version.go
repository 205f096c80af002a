package phone

import "runtime/debug"

const (
	// libraryModule is the module path of the phone-number library.
	libraryModule = "github.com/nyaruka/phonenumbers"
	// libraryVersion is the library version pinned in go.mod. It is only
	// reported when the binary carries no module build information.
	libraryVersion = "v1.8.1"
)

// MetadataVersion returns the version of the github.com/nyaruka/phonenumbers
// module, e.g. "v1.8.1", which also identifies its embedded metadata. It is
// read from the binary's build information (honouring replace directives)
// and falls back to the version pinned when this package was written.
func MetadataVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path != libraryModule {
				continue
			}
			if dep.Replace != nil && dep.Replace.Version != "" {
				return dep.Replace.Version
			}
			if dep.Version != "" && dep.Version != "(devel)" {
				return dep.Version
			}
		}
	}
	return libraryVersion
}
