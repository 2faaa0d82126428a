// etcd for kwc's API tests: the upstream server entry point, built in this module so
// its version is the one kube-apiserver's module graph selects.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
