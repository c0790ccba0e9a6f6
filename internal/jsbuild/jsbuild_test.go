package jsbuild

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero/internal/protocol"
)

// TestDistIsUpToDate fails when the committed js/dist is not what js/src
// builds to, so that a change to the client cannot land without its bundle.
func TestDistIsUpToDate(t *testing.T) {
	stale, err := Stale("../../js")
	require.NoError(t, err)
	require.Empty(t, stale, "js/dist is out of date: run go generate in the repository root and commit js/dist")
}

func TestBuildMakesBothBundlesWithMaps(t *testing.T) {
	files, err := Build("../../js")
	require.NoError(t, err)
	classic, module := string(files["wszero.js"]), string(files["wszero.mjs"])
	require.True(t, strings.HasPrefix(classic, "(()=>{"), "the classic script is an IIFE")
	require.Contains(t, classic, "//# sourceMappingURL=wszero.js.map")
	require.NotContains(t, classic, "export{", "the classic script has no exports")
	require.Contains(t, module, "export{")
	require.Contains(t, module, "//# sourceMappingURL=wszero.mjs.map")
	require.NotContains(t, module, "\n  ", "minified")
	for _, m := range []string{"wszero.js.map", "wszero.mjs.map"} {
		require.Contains(t, string(files[m]), `"../src/client.ts"`, "the map points at the TypeScript source")
	}
	for _, name := range []string{"call", "on", "onState", "connect", "send_message", "HANDLERS", "CallError", "close", "connectionState"} {
		require.Contains(t, string(files["wszero.d.ts"]), " "+name, "the types declare %s", name)
	}
}

func TestBuildErrorIsReported(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, writeFile(dir+"/src/classic.ts", "let x = ;\n"))
	require.NoError(t, writeFile(dir+"/src/index.ts", "export const y = 1\n"))
	require.NoError(t, writeFile(dir+"/src/wszero.d.ts", "export {}\n"))
	_, err := Build(dir)
	require.ErrorContains(t, err, "building wszero.js")
	require.ErrorContains(t, err, "src/classic.ts:1:")
}

func writeFile(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// TestClientSpellsNoProtocolLiterals: the browser client's source spells no
// string of the protocol itself; it imports them from ProtocolFile, which
// is generated from the server's constants (TestDistIsUpToDate checks it).
func TestClientSpellsNoProtocolLiterals(t *testing.T) {
	constant := regexp.MustCompile(`export const (\w+) = ("[^"]*");`)
	var literals []string
	for _, m := range constant.FindAllStringSubmatch(protocol.TypeScript(), -1) {
		if m[1] != "KeyOp" && m[1] != "ReservedPrefix" { // "op" and "_" are words of the messages shown to people too
			literals = append(literals, m[2], "'"+strings.Trim(m[2], `"`)+"'")
		}
	}
	require.GreaterOrEqual(t, len(literals), 28, "the constants were read")
	comment := regexp.MustCompile(`(?m)//.*$|/\*[\s\S]*?\*/`)
	sources, err := filepath.Glob("../../js/src/*.ts")
	require.NoError(t, err)
	for _, path := range sources {
		if filepath.Base(path) == filepath.Base(ProtocolFile) || strings.HasSuffix(path, ".d.ts") {
			continue
		}
		src, err := os.ReadFile(path)
		require.NoError(t, err)
		code := comment.ReplaceAllString(string(src), "")
		for _, lit := range literals {
			require.NotContains(t, code, lit, "%s spells %s: import it from %s", path, lit, ProtocolFile)
		}
	}
}
