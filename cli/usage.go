package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Argument checks that word their errors like docker 28.

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return usageError(cmd, "accepts no arguments", false)
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return usageError(cmd, "requires "+plural(n), false)
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return usageError(cmd, "requires at least "+plural(n), true)
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) <= n {
			return nil
		}
		return usageError(cmd, "requires at most "+plural(n), false)
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo {
			return minArgs(lo)(cmd, args)
		}
		return maxArgs(hi)(cmd, args)
	}
}

func plural(n int) string {
	if n == 1 {
		return "1 argument"
	}
	return fmt.Sprintf("%d arguments", n)
}

// usageError is docker's complaint about arguments: the problem, the
// usage line and where to read more. Docker says "See" after "at least"
// errors and "Run" after the others; berth keeps the difference.
func usageError(cmd *cobra.Command, problem string, see bool) error {
	verb := "Run"
	if see {
		verb = "See"
	}
	path := cmd.CommandPath()
	return &StatusError{
		Status: fmt.Sprintf("berth: '%s' %s\n\nUsage:  %s\n\n%s '%s --help' for more information", path, problem, cmd.UseLine(), verb, path),
		Code:   1,
	}
}

// flagError is docker's answer to a flag that does not parse: exit status
// 125 and no "berth:" prefix.
func flagError(cmd *cobra.Command, err error) error {
	return &StatusError{
		Status: fmt.Sprintf("%s\n\nUsage:  %s\n\nRun '%s --help' for more information", err, cmd.UseLine(), cmd.CommandPath()),
		Code:   125,
	}
}

// setupUsage applies docker's help layout and flag errors to the tree.
func setupUsage(root *cobra.Command) {
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		cmd.SetFlagErrorFunc(flagError)
		cmd.SetUsageFunc(func(cmd *cobra.Command) error {
			_, err := fmt.Fprint(cmd.OutOrStderr(), usage(cmd))
			return err
		})
		cmd.SetHelpFunc(func(cmd *cobra.Command, _ []string) {
			fmt.Fprint(cmd.OutOrStdout(), usage(cmd))
		})
		cmd.DisableFlagsInUseLine = true
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// usage is a command's help text in docker's layout.
func usage(cmd *cobra.Command) string {
	var b strings.Builder
	if cmd.HasParent() {
		fmt.Fprintf(&b, "Usage:  %s\n\n%s\n", cmd.UseLine(), cmd.Short)
	} else {
		fmt.Fprintf(&b, "Usage:  %s [OPTIONS] COMMAND\n\n%s\n", cmd.Name(), cmd.Short)
	}
	if len(cmd.Aliases) > 0 {
		parent := ""
		if cmd.HasParent() {
			parent = cmd.Parent().CommandPath() + " "
		}
		names := []string{}
		for _, n := range append([]string{cmd.Name()}, cmd.Aliases...) {
			names = append(names, parent+n)
		}
		fmt.Fprintf(&b, "\nAliases:\n  %s\n", strings.Join(names, ", "))
	}
	b.WriteString(commandList(cmd))
	if flags := flagUsages(cmd.LocalFlags()); flags != "" {
		title := "Options"
		if !cmd.HasParent() {
			title = "Global Options"
		}
		fmt.Fprintf(&b, "\n%s:\n%s\n", title, flags)
	}
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\nRun '%s COMMAND --help' for more information on a command.\n", cmd.CommandPath())
	}
	return b.String()
}

// commandList prints subcommands under their group titles.
func commandList(cmd *cobra.Command) string {
	byGroup := map[string][]*cobra.Command{}
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			byGroup[sub.GroupID] = append(byGroup[sub.GroupID], sub)
		}
	}
	groups := cmd.Groups()
	if len(groups) == 0 {
		groups = []*cobra.Group{{ID: "", Title: "Commands:"}}
	}
	var b strings.Builder
	for _, g := range groups {
		subs := byGroup[g.ID]
		if len(subs) == 0 {
			continue
		}
		b.WriteString("\n" + g.Title + "\n")
		for _, sub := range subs {
			fmt.Fprintf(&b, "  %-11s %s\n", sub.Name(), sub.Short)
		}
	}
	return b.String()
}

// flagUsages lists flags without cobra's "--help" entry, which docker
// hides.
func flagUsages(fs *pflag.FlagSet) string {
	filtered := pflag.NewFlagSet("", pflag.ContinueOnError)
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && !f.Hidden {
			filtered.AddFlag(f)
		}
	})
	return strings.TrimRight(filtered.FlagUsagesWrapped(80), "\n")
}

// listValue is a repeatable string flag that shows docker's type name
// ("list", "filter") in help instead of pflag's "stringArray".
type listValue struct {
	values *[]string
	kind   string
}

func (l *listValue) String() string     { return strings.Join(*l.values, ",") }
func (l *listValue) Set(s string) error { *l.values = append(*l.values, s); return nil }
func (l *listValue) Type() string       { return l.kind }

// listVarP defines a repeatable flag of the given docker type name.
func listVarP(fs *pflag.FlagSet, p *[]string, kind, name, short, usage string) {
	fs.VarP(&listValue{values: p, kind: kind}, name, short, usage)
}
