// Package cachedir says where vktrain keeps what it caches per machine: compiled pipelines and
// tuned profiles.
package cachedir

import (
	"os"
	"path/filepath"
)

// Dir is $VKTRAIN_CACHE_DIR, else vktrain/ in the user cache directory; "" when caching on disk
// is off (VKTRAIN_CACHE_DIR=-) or no user cache directory is known.
func Dir() string {
	dir := os.Getenv("VKTRAIN_CACHE_DIR")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(base, "vktrain")
	}
	if dir == "-" {
		return ""
	}
	return dir
}
