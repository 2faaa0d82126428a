package main

import (
	"fmt"
	"os"

	"kwc.dev/kwc/internal/config"
)

func configCmd(args []string) error {
	fs := newFlags("config", "defaults | validate FILE")
	if err := parseFlags(fs, args, 2); err != nil {
		return err
	}
	switch fs.Arg(0) {
	case "defaults":
		if fs.NArg() != 1 {
			return usageError{fs, fmt.Sprintf("unexpected argument %q", fs.Arg(1))}
		}
		_, err := os.Stdout.Write(config.DefaultYAML())
		return err
	case "validate":
		if fs.NArg() != 2 {
			return usageError{fs, "validate takes one FILE"}
		}
		c, err := config.Load(fs.Arg(1), config.Overrides{})
		if err != nil {
			return err
		}
		fmt.Printf("%s: valid (%d lanes, target %s)\n", fs.Arg(1), len(c.Lanes), c.Target)
		return nil
	case "":
		return usageError{fs, "say which: defaults or validate FILE"}
	}
	return usageError{fs, fmt.Sprintf("unknown config command %q", fs.Arg(0))}
}
