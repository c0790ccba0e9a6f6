package protocol

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// TestTypeScriptHasEveryConstant: each op and key declared in protocol.go
// is rendered for the browser client, with its value, so that a constant
// added here cannot be missing there.
func TestTypeScriptHasEveryConstant(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "protocol.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts := TypeScript()
	found := 0
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				value, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("export const %s = %q;", name.Name, value)
				if !strings.Contains(ts, want) {
					t.Errorf("TypeScript() lacks %s", want)
				}
				found++
			}
		}
	}
	if found < 16 {
		t.Fatalf("found %d string constants in protocol.go; the test reads the file wrongly", found)
	}
}
