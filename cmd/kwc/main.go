// kwc is the command-line side of the suite: calibrate the escape probes, clean up
// what an interrupted run left, and show or validate configuration. The conformance
// run itself is the Ginkgo suite (make e2e).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: kwc <command> [flags]

commands:
  calibrate   run the escape probes on the node, in each lane and in a VM; check
              every probe reaches its control and nothing in the VM
  cleanup     remove containers and canaries an interrupted run left behind
  gate        --policy FILE [--baseline REPORT] [REPORT]: exit 0 or 1 with the reasons
  report      [--rejudge] [--check-browser] [REPORT]: render summary.md, index.html,
              junit.xml again (--rejudge: decide escape again from the observations)
  compare     REPORT-A REPORT-B: exit 1 when any verdict differs (lane, criterion, check)
  config      defaults | validate FILE
  node-image  build kwc's offline kind node image into the engine (make node-image
              builds its binaries first) and print its reference
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := interruptible()
	defer stop()
	var err error
	switch os.Args[1] {
	case "calibrate":
		err = calibrateCmd(ctx, os.Args[2:])
	case "cleanup":
		err = cleanupCmd(ctx, os.Args[2:])
	case "config":
		err = configCmd(os.Args[2:])
	case "gate":
		err = gateCmd(os.Args[2:])
	case "report":
		err = reportCmd(ctx, os.Args[2:])
	case "compare":
		err = compareCmd(os.Args[2:])
	case "node-image":
		err = nodeImageCmd(ctx, os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "kwc: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	var fail exitError
	if errors.As(err, &fail) {
		os.Exit(int(fail))
	}
	if errors.Is(err, flag.ErrHelp) {
		return // the flag set printed its usage
	}
	var bad usageError
	if errors.As(err, &bad) {
		fmt.Fprintf(os.Stderr, "kwc %s: %s\n", bad.fs.Name(), bad.msg)
		bad.fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kwc: %v\n", err)
		os.Exit(1)
	}
}

// exitError ends the command with a code after it has said why.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// interruptible cancels the context on the first Ctrl-C so cleanup runs; a second
// Ctrl-C gives up on cleanup and exits at once.
func interruptible() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		fmt.Fprintln(os.Stderr, "kwc: interrupted: cleaning up (press Ctrl-C again to abort cleanup)")
		cancel()
		<-ch
		fmt.Fprintln(os.Stderr, "kwc: aborted; `kwc cleanup --all` removes what is left")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// newFlags makes a command's flag set; synopsis is what follows the command's name.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kwc %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and refuses more than maxArgs positional arguments: an
// argument kwc would ignore is a mistake the user should hear about. -h and --help
// print the usage and end the command with exit 0 (flag.ErrHelp).
func parseFlags(fs *flag.FlagSet, args []string, maxArgs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{fs, err.Error()}
	}
	if fs.NArg() > maxArgs {
		return usageError{fs, fmt.Sprintf("unexpected argument %q", fs.Arg(maxArgs))}
	}
	return nil
}

// usageError is a command line kwc cannot take: it ends with the usage and exit 2.
type usageError struct {
	fs  *flag.FlagSet
	msg string
}

func (e usageError) Error() string { return e.msg }
