// Package jsbuild builds wszero's browser client from js/src with esbuild's
// Go API: a minified classic script and an ES module, each with a source
// map, plus the hand-written type declarations. No Node is needed.
package jsbuild

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
	"github.com/wszero/wszero/internal/protocol"
)

// ProtocolFile is the TypeScript module that Write generates from
// internal/protocol, relative to the js folder: the client's protocol
// strings are the server's.
const ProtocolFile = "src/protocol.ts"

// Outputs are the files Build produces, relative to js/dist.
var Outputs = []string{"wszero.js", "wszero.js.map", "wszero.mjs", "wszero.mjs.map", "wszero.d.ts"}

// Build bundles the client found in jsDir (the repository's js folder) and
// returns the files for js/dist by name.
func Build(jsDir string) (map[string][]byte, error) {
	jsDir, err := filepath.Abs(jsDir)
	if err != nil {
		return nil, err
	}
	dist := filepath.Join(jsDir, "dist")
	files := map[string][]byte{}
	bundles := []struct {
		entry, out string
		format     api.Format
	}{
		{"src/classic.ts", "wszero.js", api.FormatIIFE},
		{"src/index.ts", "wszero.mjs", api.FormatESModule},
	}
	for _, b := range bundles {
		result := api.Build(api.BuildOptions{
			AbsWorkingDir:     jsDir,
			EntryPoints:       []string{b.entry},
			Outfile:           filepath.Join(dist, b.out),
			Bundle:            true,
			Format:            b.format,
			Target:            api.ES2020,
			Platform:          api.PlatformBrowser,
			MinifyWhitespace:  true,
			MinifyIdentifiers: true,
			MinifySyntax:      true,
			Sourcemap:         api.SourceMapLinked,
			Charset:           api.CharsetUTF8,
			LegalComments:     api.LegalCommentsNone,
			LogLevel:          api.LogLevelSilent,
			// js/tsconfig.json is for type-checking with tsc; the bundle's
			// settings are all here.
			TsconfigRaw: "{}",
		})
		if len(result.Errors) > 0 {
			msgs := api.FormatMessages(result.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
			return nil, fmt.Errorf("building %s:\n%s", b.out, strings.Join(msgs, ""))
		}
		if len(result.Warnings) > 0 {
			msgs := api.FormatMessages(result.Warnings, api.FormatMessagesOptions{Kind: api.WarningMessage})
			return nil, fmt.Errorf("building %s (warnings are errors here):\n%s", b.out, strings.Join(msgs, ""))
		}
		for _, f := range result.OutputFiles {
			rel, err := filepath.Rel(dist, f.Path)
			if err != nil {
				return nil, err
			}
			files[filepath.ToSlash(rel)] = f.Contents
		}
	}
	types, err := os.ReadFile(filepath.Join(jsDir, "src", "wszero.d.ts"))
	if err != nil {
		return nil, err
	}
	files["wszero.d.ts"] = types
	for _, name := range Outputs {
		if _, ok := files[name]; !ok {
			return nil, fmt.Errorf("the build made no %s", name)
		}
	}
	return files, nil
}

// Write generates ProtocolFile, builds the client and writes it to
// jsDir/dist.
func Write(jsDir string) error {
	if err := os.WriteFile(filepath.Join(jsDir, ProtocolFile), []byte(protocol.TypeScript()), 0o644); err != nil {
		return err
	}
	files, err := Build(jsDir)
	if err != nil {
		return err
	}
	dist := filepath.Join(jsDir, "dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dist, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Stale lists the files of jsDir/dist that differ from what the source
// builds to, and ProtocolFile when it differs from internal/protocol.
func Stale(jsDir string) ([]string, error) {
	var stale []string
	have, err := os.ReadFile(filepath.Join(jsDir, ProtocolFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if string(have) != protocol.TypeScript() {
		stale = append(stale, ProtocolFile)
	}
	files, err := Build(jsDir)
	if err != nil {
		return nil, err
	}
	for _, name := range Outputs {
		have, err := os.ReadFile(filepath.Join(jsDir, "dist", name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if string(have) != string(files[name]) {
			stale = append(stale, name)
		}
	}
	return stale, nil
}
