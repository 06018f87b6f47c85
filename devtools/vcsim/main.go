// vcsim for vmprov's tests and benchmarks: govmomi's vCenter simulator with a
// topology and latency chosen on the command line.
//
// Debian ships govmomi's simulator package but no vcsim command; build with
//   GOPATH=/usr/share/gocode GO111MODULE=off go build -o vcsim main.go
//
// On start it prints one JSON line {"url": "https://user:pass@host:port/sdk"}
// and serves until SIGTERM/SIGINT, or with -watch-stdin until its stdin closes
// (so a test runner that dies never leaves it behind).
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	username := flag.String("username", "user", "login user")
	password := flag.String("password", "pass", "login password")
	plain := flag.Bool("http", false, "serve plain http instead of https")
	dc := flag.Int("dc", 1, "datacenters")
	cluster := flag.Int("cluster", 1, "clusters per datacenter")
	clusterHost := flag.Int("cluster-host", 2, "hosts per cluster")
	host := flag.Int("host", 0, "standalone hosts per datacenter")
	pool := flag.Int("pool", 1, "child resource pools per cluster")
	ds := flag.Int("ds", 1, "datastores")
	pg := flag.Int("pg", 1, "distributed port groups per datacenter")
	vm := flag.Int("vm", 2, "VMs per resource pool and per standalone host")
	folder := flag.Int("folder", 0, "folders per folder type")
	templates := flag.Int("templates", 1, "VMs per datacenter turned into templates")
	delay := flag.Int("delay", 0, "milliseconds added to every SOAP call")
	methodDelay := flag.String("method-delay", "", "per-method delays, e.g. RetrievePropertiesEx:800,Login:100")
	jitter := flag.Float64("jitter", 0, "delay jitter (coefficient of variation)")
	watchStdin := flag.Bool("watch-stdin", false, "exit when stdin closes")
	renames := flag.String("rename", "", `JSON {"Type/old name": "new name"}: rename objects vcsim cannot rename through the API (datastores, port groups, pools)`)
	flag.Parse()

	// The simulator logs every fault; keep our stdout to the one JSON line.
	log.SetOutput(ioutil.Discard)

	model := simulator.VPX()
	model.Datacenter = *dc
	model.Cluster = *cluster
	model.ClusterHost = *clusterHost
	model.Host = *host
	model.Pool = *pool
	model.Datastore = *ds
	model.Portgroup = *pg
	model.Machine = *vm
	model.Folder = *folder
	model.DelayConfig.Delay = *delay
	model.DelayConfig.DelayJitter = *jitter
	model.DelayConfig.MethodDelay = parseMethodDelay(*methodDelay)

	if err := model.Create(); err != nil {
		fail(err)
	}
	defer model.Remove()

	markUplinkPortgroups()
	renameObjects(*renames)
	makeTemplates(*templates)
	assignGuestAddresses()

	if !*plain {
		model.Service.TLS = new(tls.Config)
	}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	server := model.Service.NewServer()
	defer server.Close()

	out, _ := json.Marshal(map[string]string{"url": server.URL.String()})
	fmt.Println(string(out))

	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGINT, syscall.SIGTERM)
	if *watchStdin {
		go func() {
			_, _ = io.Copy(ioutil.Discard, os.Stdin)
			done <- syscall.SIGTERM
		}()
	}
	<-done
}

func parseMethodDelay(spec string) map[string]int {
	delays := map[string]int{}
	for _, item := range strings.Split(spec, ",") {
		if item == "" {
			continue
		}
		parts := strings.SplitN(item, ":", 2)
		if len(parts) != 2 {
			fail(fmt.Errorf("bad -method-delay item %q", item))
		}
		ms, err := strconv.Atoi(parts[1])
		if err != nil {
			fail(err)
		}
		delays[parts[0]] = ms
	}
	return delays
}

// A real vCenter flags each switch's uplink port group (config.uplink and the
// SYSTEM/DVS.UPLINKPG tag); govmomi 0.24's simulator does neither.
func markUplinkPortgroups() {
	for _, entity := range simulator.Map.All("DistributedVirtualPortgroup") {
		pg := entity.(*simulator.DistributedVirtualPortgroup)
		if strings.Contains(pg.Name, "-DVUplinks") {
			pg.Config.Uplink = types.NewBool(true)
			pg.Tag = append(pg.Tag, types.Tag{Key: "SYSTEM/DVS.UPLINKPG"})
		}
	}
}

// vcsim makes no templates: power off the first VMs of each datacenter (in
// name order, so runs are repeatable) and mark them as templates.
func makeTemplates(perDatacenter int) {
	byDatacenter := map[string][]*simulator.VirtualMachine{}
	for _, entity := range simulator.Map.All("VirtualMachine") {
		vm := entity.(*simulator.VirtualMachine)
		dc := strings.SplitN(vm.Name, "_", 2)[0]
		byDatacenter[dc] = append(byDatacenter[dc], vm)
	}
	for _, vms := range byDatacenter {
		sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
		for i := 0; i < perDatacenter && i < len(vms); i++ {
			vm := vms[i]
			vm.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
			vm.Summary.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
			vm.Config.GuestId = "ubuntu64Guest"
			vm.Summary.Config.GuestId = "ubuntu64Guest"
			vm.Guest.Net = nil
			res := vm.MarkAsTemplate(&types.MarkAsTemplate{This: vm.Self})
			if res.Fault() != nil {
				fail(fmt.Errorf("MarkAsTemplate %s: %v", vm.Name, res.Fault().VimFault()))
			}
		}
	}
}

// Give every powered-on VM a guest address (10.x.y.z, unique), as VMware
// Tools would report it, so tests can exercise "IP already in use".
func assignGuestAddresses() {
	var vms []*simulator.VirtualMachine
	for _, entity := range simulator.Map.All("VirtualMachine") {
		vm := entity.(*simulator.VirtualMachine)
		if !vm.Config.Template && vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
			vms = append(vms, vm)
		}
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	for i, vm := range vms {
		n := i + 10
		ip := fmt.Sprintf("10.%d.%d.%d", 10+n/65536, (n/256)%256, n%256)
		vm.Guest.IpAddress = ip
		vm.Summary.Guest.IpAddress = ip
		if len(vm.Guest.Net) > 0 {
			vm.Guest.Net[0].IpAddress = []string{ip}
		}
	}
}

// govmomi 0.24's simulator has no Rename_Task for datastores, port groups or
// resource pools; a real vCenter renames them all, so tests need such names.
func renameObjects(spec string) {
	if spec == "" {
		return
	}
	renames := map[string]string{}
	if err := json.Unmarshal([]byte(spec), &renames); err != nil {
		fail(fmt.Errorf("bad -rename: %v", err))
	}
	for typeAndName, newName := range renames {
		parts := strings.SplitN(typeAndName, "/", 2)
		if len(parts) != 2 {
			fail(fmt.Errorf("bad -rename key %q: want Type/name", typeAndName))
		}
		found := false
		for _, entity := range simulator.Map.All(parts[0]) {
			if entity.Entity().Name != parts[1] {
				continue
			}
			found = true
			entity.Entity().Name = newName
			switch obj := entity.(type) {
			case *simulator.Datastore:
				obj.Summary.Name = newName
			case *simulator.DistributedVirtualPortgroup:
				obj.Name = newName // mo.Network has its own name field beside ManagedEntity's
				obj.Config.Name = newName
			}
		}
		if !found {
			fail(fmt.Errorf("-rename: no %s named %q", parts[0], parts[1]))
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "vcsim:", err)
	os.Exit(1)
}
