package probe

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The network rule, enforced on the source: a probe dials only unix sockets or TCP on
// 127.0.0.1, never an address from elsewhere. Every Dial/DialContext call must name
// "unix", or "tcp" inside a function that builds its address from the literal
// "127.0.0.1"; a new dial that does neither fails here until it is reviewed.
func TestProbesDialOnlyLoopbackOrUnix(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	dials := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			loopback := false
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, _ := strconv.Unquote(lit.Value); s == "127.0.0.1" {
						loopback = true
					}
				}
				return true
			})
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "Dial" && sel.Sel.Name != "DialContext") {
					return true
				}
				dials++
				netArg := call.Args[0]
				if sel.Sel.Name == "DialContext" {
					netArg = call.Args[1]
				}
				lit, ok := netArg.(*ast.BasicLit)
				network := ""
				if ok {
					network, _ = strconv.Unquote(lit.Value)
				}
				switch {
				case network == "unix":
				case network == "tcp" && loopback:
				default:
					t.Errorf("%s: %s dials %q without a 127.0.0.1 address in %s", fset.Position(call.Pos()), sel.Sel.Name, network, fn.Name.Name)
				}
				return true
			})
		}
	}
	if dials < 3 {
		t.Fatalf("found %d dials; the check is not seeing the probes' connections", dials)
	}
}
