package main

import (
	"errors"
	"fmt"
	"os"

	"kwc.dev/kwc/internal/config"
)

func configCmd(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: kwc config defaults | kwc config validate FILE")
	}
	switch args[0] {
	case "defaults":
		_, err := os.Stdout.Write(config.DefaultYAML())
		return err
	case "validate":
		if len(args) != 2 {
			return errors.New("usage: kwc config validate FILE")
		}
		c, err := config.Load(args[1], config.Overrides{})
		if err != nil {
			return err
		}
		fmt.Printf("%s: valid (%d lanes, target %s)\n", args[1], len(c.Lanes), c.Target)
		return nil
	}
	return fmt.Errorf("unknown config command %q", args[0])
}
