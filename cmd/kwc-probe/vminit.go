package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"kwc.dev/kwc/internal/escape/probe"
	"kwc.dev/kwc/internal/probespec"
)

// Markers frame the result on the VM's console.
const (
	ResultBegin = "KWC-PROBE-RESULT-BEGIN"
	ResultEnd   = "KWC-PROBE-RESULT-END"
)

func vmInit() {
	defer func() {
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}()
	for _, m := range []struct{ src, dst, fstype string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fstype, 0, ""); err != nil {
			fmt.Printf("kwc-probe init: mount %s: %v\n", m.dst, err)
		}
	}
	_ = os.MkdirAll("/dev/shm", 0o1777)
	_ = unix.Mount("tmpfs", "/dev/shm", "tmpfs", 0, "")
	cmdline, _ := os.ReadFile("/proc/cmdline")
	var spec probespec.Spec
	for _, f := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(f, "kwc.spec="); ok {
			b, err := base64.RawURLEncoding.DecodeString(v)
			if err == nil {
				err = json.Unmarshal(b, &spec)
			}
			if err != nil {
				fmt.Printf("kwc-probe init: bad kwc.spec: %v\n", err)
				return
			}
		}
	}
	if spec.Marker == "" {
		fmt.Println("kwc-probe init: no kwc.spec on the kernel command line")
		return
	}
	res := probe.Run(context.Background(), spec)
	b, _ := json.Marshal(res)
	fmt.Printf("\n%s\n%s\n%s\n", ResultBegin, b, ResultEnd)
}
