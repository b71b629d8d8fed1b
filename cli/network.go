package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"berth.dev/cli/format"
)

// networkCommand is "berth network".
func (c *CLI) networkCommand() *cobra.Command {
	cmd := managementCommand("network", "Manage networks")
	cmd.AddCommand(c.networkConnectCommand(), c.networkCreateCommand(), c.networkDisconnectCommand(),
		c.networkInspectCommand(), c.networkListCommand(), c.networkPruneCommand(), c.networkRemoveCommand())
	return cmd
}

// networkCreateOptions are the flags of "berth network create".
type networkCreateOptions struct {
	driver     string
	opts       []string
	labels     []string
	internal   bool
	ipv4, ipv6 bool
	attachable bool
	scope      string

	ipamDriver string
	ipamOpts   []string
	subnets    []string
	ipRanges   []net.IPNet
	gateways   []net.IP
	auxAddrs   []string
}

func (c *CLI) networkCreateCommand() *cobra.Command {
	var o networkCreateOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.request(cmd)
			if err != nil {
				return err
			}
			api, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.NetworkCreate(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.driver, "driver", "d", "bridge", "Driver to manage the Network")
	listVarP(f, &o.opts, "map", "opt", "o", "Set driver specific options")
	listVarP(f, &o.labels, "list", "label", "", "Set metadata on a network")
	f.BoolVar(&o.internal, "internal", false, "Restrict external access to the network")
	f.BoolVar(&o.ipv4, "ipv4", true, "Enable or disable IPv4 address assignment")
	f.BoolVar(&o.ipv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	f.BoolVar(&o.attachable, "attachable", false, "Enable manual container attachment")
	f.StringVar(&o.scope, "scope", "", "Control the network's scope")
	f.StringVar(&o.ipamDriver, "ipam-driver", "default", "IP Address Management Driver")
	f.StringSliceVar(&o.subnets, "subnet", nil, "Subnet in CIDR format that represents a network segment")
	f.IPNetSliceVar(&o.ipRanges, "ip-range", nil, "Allocate container ip from a sub-range")
	f.IPSliceVar(&o.gateways, "gateway", nil, "IPv4 or IPv6 Gateway for the master subnet")
	listVarP(f, &o.auxAddrs, "map", "aux-address", "", "Auxiliary IPv4 or IPv6 addresses used by Network driver")
	listVarP(f, &o.ipamOpts, "map", "ipam-opt", "", "Set IPAM driver specific options")
	return cmd
}

// request turns the flags into the create request docker's CLI sends:
// --ipv4 and --ipv6 only when given, one IPAM entry per subnet with the
// ranges, gateways and auxiliary addresses that fall inside it.
func (o *networkCreateOptions) request(cmd *cobra.Command) (client.NetworkCreateOptions, error) {
	driverOpts, err := keyValueMap(o.opts, "opt")
	if err != nil {
		return client.NetworkCreateOptions{}, err
	}
	ipam, err := o.ipam()
	if err != nil {
		return client.NetworkCreateOptions{}, err
	}
	labels := map[string]string{}
	for _, l := range o.labels {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	req := client.NetworkCreateOptions{
		Driver: o.driver, Options: driverOpts, IPAM: ipam, Internal: o.internal,
		Attachable: o.attachable, Scope: o.scope, Labels: labels,
	}
	if cmd.Flags().Changed("ipv4") {
		req.EnableIPv4 = &o.ipv4
	}
	if cmd.Flags().Changed("ipv6") {
		req.EnableIPv6 = &o.ipv6
	}
	return req, nil
}

func (o *networkCreateOptions) ipam() (*network.IPAM, error) {
	if len(o.subnets) < len(o.ipRanges) || len(o.subnets) < len(o.gateways) {
		return nil, errors.New("every ip-range or gateway must have a corresponding subnet")
	}
	configs := make([]network.IPAMConfig, 0, len(o.subnets))
	for _, s := range o.subnets {
		p, err := parseSubnet(s)
		if err != nil {
			return nil, err
		}
		for _, other := range configs {
			if other.Subnet.Overlaps(p) {
				return nil, errors.New("multiple overlapping subnet configuration is not supported")
			}
		}
		configs = append(configs, network.IPAMConfig{Subnet: p, AuxAddress: map[string]netip.Addr{}})
	}
	// inSubnet returns the index of the subnet holding a, or -1.
	inSubnet := func(a netip.Addr) int {
		return slices.IndexFunc(configs, func(c network.IPAMConfig) bool { return c.Subnet.Contains(a.Unmap()) })
	}
	for _, r := range o.ipRanges {
		ones, _ := r.Mask.Size()
		a, _ := netip.AddrFromSlice(r.IP)
		rng := netip.PrefixFrom(a.Unmap(), ones)
		i := inSubnet(rng.Addr())
		if i < 0 {
			return nil, fmt.Errorf("no matching subnet for range %s", r.String())
		}
		if configs[i].IPRange.IsValid() {
			return nil, fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", r.String(), configs[i].IPRange, configs[i].Subnet)
		}
		configs[i].IPRange = rng
	}
	for _, g := range o.gateways {
		a, _ := netip.AddrFromSlice(g)
		a = a.Unmap()
		i := inSubnet(a)
		if i < 0 {
			return nil, fmt.Errorf("no matching subnet for gateway %s", g)
		}
		if configs[i].Gateway.IsValid() {
			return nil, fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", g, configs[i].Gateway, configs[i].Subnet)
		}
		configs[i].Gateway = a
	}
	aux, err := keyValueMap(o.auxAddrs, "aux-address")
	if err != nil {
		return nil, err
	}
	for key, v := range aux {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, err
		}
		i := inSubnet(a)
		if i < 0 {
			return nil, fmt.Errorf("no matching subnet for aux-address %s", v)
		}
		configs[i].AuxAddress[key] = a
	}
	ipamOpts, err := keyValueMap(o.ipamOpts, "ipam-opt")
	if err != nil {
		return nil, err
	}
	return &network.IPAM{Driver: o.ipamDriver, Config: configs, Options: ipamOpts}, nil
}

// parseSubnet reads a --subnet value: a prefix, or one address as a
// prefix of its full length.
func parseSubnet(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	if _, _, err := net.ParseCIDR(s); err != nil && strings.Contains(s, "/") {
		return netip.Prefix{}, fmt.Errorf("invalid subnet: %w", err)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid subnet: invalid CIDR address: %s", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// networkRow is one line of "berth network ls". Fields are in
// alphabetical order so that --format json prints them in docker's order.
type networkRow struct {
	CreatedAt string
	Driver    string
	ID        string
	IPv4      string
	IPv6      string
	Internal  string
	Labels    string
	Name      string
	Scope     string

	labels map[string]string
}

// Label is the value of one label, for templates: {{.Label "com.x"}}.
func (r networkRow) Label(name string) string { return r.labels[name] }

var networkHeaders = map[string]string{
	"CreatedAt": "CREATED AT",
	"Driver":    "DRIVER",
	"ID":        "NETWORK ID",
	"IPv4":      "IPV4",
	"IPv6":      "IPV6",
	"Internal":  "INTERNAL",
	"Labels":    "LABELS",
	"Name":      "NAME",
	"Scope":     "SCOPE",
}

const networkDefaultTable = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

func (c *CLI) networkListCommand() *cobra.Command {
	var quiet, noTrunc bool
	var tmpl string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.networkList(cmd.Context(), quiet, noTrunc, tmpl, filters)
		},
	}
	f := cmd.Flags()
	listVarP(f, &filters, "filter", "filter", "f", `Provide filter values (e.g. "driver=bridge")`)
	f.StringVar(&tmpl, "format", "", formatHelp)
	f.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	return cmd
}

func (c *CLI) networkList(ctx context.Context, quiet, noTrunc bool, tmpl string, filterArgs []string) error {
	filters, err := parseFilters(filterArgs)
	if err != nil {
		return err
	}
	f := format.Parse(tmpl, networkDefaultTable)
	if quiet && (tmpl == "" || tmpl == "table") {
		f = format.Format{Template: "{{.ID}}"}
	}
	if _, err := format.NewTemplate(f.Template); err != nil {
		return err
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: filters})
	if err != nil {
		return err
	}
	items := slices.Clone(res.Items)
	slices.SortFunc(items, func(a, b network.Summary) int { return naturalCompare(a.Name, b.Name) })
	rows := make([]format.Row, 0, len(items))
	for _, n := range items {
		rows = append(rows, networkRowOf(n, noTrunc))
	}
	return format.Write(c.out, f, networkHeaders, rows)
}

func networkRowOf(n network.Summary, noTrunc bool) networkRow {
	r := networkRow{
		CreatedAt: n.Created.String(), Driver: n.Driver, ID: n.ID, Name: n.Name, Scope: n.Scope,
		IPv4: strconv.FormatBool(n.EnableIPv4), IPv6: strconv.FormatBool(n.EnableIPv6),
		Internal: strconv.FormatBool(n.Internal), labels: n.Labels,
	}
	if !noTrunc {
		r.ID = format.TruncateID(n.ID)
	}
	var labels []string
	for k, v := range n.Labels {
		labels = append(labels, k+"="+v)
	}
	slices.Sort(labels)
	r.Labels = strings.Join(labels, ",")
	return r
}

// naturalCompare orders names as docker's lists do: runs of digits by
// their value ("net2" before "net10"), everything else byte by byte.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) - len(nb)
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

func (c *CLI) networkInspectCommand() *cobra.Command {
	var tmpl string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := networkKind()
			if verbose {
				kind.fetch = func(ctx context.Context, api *client.Client, ref string, _ bool) ([]byte, error) {
					res, err := api.NetworkInspect(ctx, ref, client.NetworkInspectOptions{Verbose: true})
					return res.Raw, err
				}
			}
			return c.inspectObjects(cmd.Context(), args, tmpl, false, []inspectKind{kind}, false)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", formatHelpNoTable)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}

// networkRemoveCommand is "berth network rm": each network's name is
// printed once removed; failures are printed as they happen and end the
// command with "exit status 1", as docker does.
func (c *CLI) networkRemoveCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.removeNetworks(cmd.Context(), args, force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func (c *CLI) removeNetworks(ctx context.Context, names []string, force bool) error {
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	failed := false
	for _, name := range names {
		_, err := api.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
		switch {
		case err == nil:
			fmt.Fprintln(c.out, name)
		case client.IsErrConnectionFailed(err):
			return err
		case force && isNotFound(err):
		default:
			fmt.Fprintln(c.errOut, err)
			failed = true
		}
	}
	if failed {
		return &StatusError{Status: "exit status 1", Code: 1}
	}
	return nil
}

const networkPruneWarning = "WARNING! This will remove all custom networks not used by at least one container."

func (c *CLI) networkPruneCommand() *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				ok, err := c.confirm(networkPruneWarning)
				if err != nil || !ok {
					return err
				}
			}
			return c.pruneNetworks(cmd.Context(), filters)
		},
	}
	listVarP(cmd.Flags(), &filters, "filter", "filter", "", `Provide filter values (e.g. "until=<timestamp>")`)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

// pruneNetworks removes unused networks and lists them under a title, as
// network prune and system prune print them.
func (c *CLI) pruneNetworks(ctx context.Context, filterArgs []string) error {
	filters, err := parseFilters(filterArgs)
	if err != nil {
		return err
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := api.NetworkPrune(ctx, client.NetworkPruneOptions{Filters: filters})
	if err != nil {
		return err
	}
	if len(res.Report.NetworksDeleted) > 0 {
		fmt.Fprintln(c.out, "Deleted Networks:")
		for _, n := range res.Report.NetworksDeleted {
			fmt.Fprintln(c.out, n)
		}
		fmt.Fprintln(c.out)
	}
	return nil
}

// networkConnectOptions are the flags of "berth network connect".
type networkConnectOptions struct {
	ipv4, ipv6   string
	linkLocalIPs []string
	links        []string
	aliases      []string
	driverOpts   []string
	gwPriority   int
}

// endpoint is the endpoint configuration docker's CLI sends with connect:
// always present, with its IPAM part, aliases and driver options, even
// when no flag is given.
func (o *networkConnectOptions) endpoint() (*network.EndpointSettings, error) {
	ipam := &network.EndpointIPAMConfig{}
	var err error
	if ipam.IPv4Address, err = optionalAddr(o.ipv4, "IPv4"); err != nil {
		return nil, err
	}
	if ipam.IPv6Address, err = optionalAddr(o.ipv6, "IPv6"); err != nil {
		return nil, err
	}
	for _, s := range o.linkLocalIPs {
		a, err := optionalAddr(s, "link-local IP")
		if err != nil {
			return nil, err
		}
		ipam.LinkLocalIPs = append(ipam.LinkLocalIPs, a)
	}
	driverOpts, err := keyValueMap(o.driverOpts, "driver-opt")
	if err != nil {
		return nil, err
	}
	aliases := o.aliases
	if aliases == nil {
		aliases = []string{}
	}
	return &network.EndpointSettings{
		IPAMConfig: ipam, Links: o.links, Aliases: aliases, DriverOpts: driverOpts, GwPriority: o.gwPriority,
	}, nil
}

// optionalAddr parses an address flag; empty is no address.
func optionalAddr(s, what string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, invalid("invalid %s address: %s", what, s)
	}
	return a, nil
}

func (c *CLI) networkConnectCommand() *cobra.Command {
	var o networkConnectOptions
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ep, err := o.endpoint()
			if err != nil {
				return err
			}
			api, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			_, err = api.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: ep})
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ipv4, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	f.StringVar(&o.ipv6, "ip6", "", "IPv6 address (e.g., \"2001:db8::33\")")
	listVarP(f, &o.links, "list", "link", "", "Add link to another container")
	listVarP(f, &o.aliases, "strings", "alias", "", "Add network-scoped alias for the container")
	listVarP(f, &o.linkLocalIPs, "strings", "link-local-ip", "", "Add a link-local address for the container")
	listVarP(f, &o.driverOpts, "strings", "driver-opt", "", "driver options for the network")
	f.IntVar(&o.gwPriority, "gw-priority", 0, "Highest gw-priority provides the default gateway. Accepts positive and negative values.")
	return cmd
}

func (c *CLI) networkDisconnectCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client(cmd.Context())
			if err != nil {
				return err
			}
			_, err = api.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}
