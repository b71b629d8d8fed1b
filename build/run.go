package build

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"berth.dev/internal/errdefs"
)

// sigName is the form of a signal name after "SIG" ("TERM", "RTMIN+3").
var sigName = regexp.MustCompile(`^[A-Z][A-Z0-9]*([+-][0-9]+)?$`)

// runStep runs a RUN instruction's command on the stage's filesystem.
func (bd *build) runStep(st *stage, c *instructions.RunCommand) error {
	if len(instructions.GetMounts(c)) > 0 {
		return fmt.Errorf("%w: RUN --mount needs BuildKit", errdefs.ErrNotImplemented)
	}
	args, err := st.runArgs(c)
	if err != nil {
		return err
	}
	cfg := st.state.Config.Config
	argEnv := st.args.inEffect(cfg.Env)
	createdBy := strings.Join(args, " ")
	if len(argEnv) > 0 {
		shown := append([]string(nil), argEnv...)
		sort.Strings(shown)
		createdBy = fmt.Sprintf("|%d %s %s", len(shown), strings.Join(shown, " "), createdBy)
	}
	env := append(append([]string(nil), cfg.Env...), argEnv...)
	for _, k := range sortedKeys(bd.opts.BuildArgs) {
		if v, ok := bd.args.fromOptions(k); ok && builtinArgs[k] && k != sourceDateEpochArg && !hasEnv(env, k) {
			env = append(env, k+"="+v)
		}
	}
	network := instructions.GetNetwork(c)
	if network == instructions.NetworkDefault || network == "" {
		network = bd.opts.Network
	}
	spec := RunSpec{Args: args, Env: env, User: cfg.User, WorkDir: cfg.WorkingDir, Network: network}
	key := bd.cacheKey(st.state, "RUN", createdBy, strings.Join(env, "\x00"), network)
	l, err := bd.layerStep(key, func() (Layer, error) {
		l, err := bd.b.x.Run(bd.ctx, st.state, spec, bd.epoch, bd.out)
		var ee *ExitError
		if errors.As(err, &ee) {
			return Layer{}, &CommandError{Command: strings.Join(args, " "), Exit: ee}
		}
		return l, err
	})
	if err != nil {
		return err
	}
	bd.addLayer(st, l, createdBy)
	return nil
}

// runArgs is the argv of a RUN: a shell form in the stage's SHELL; a
// here-document that is the whole command runs as the shell's script.
func (st *stage) runArgs(c *instructions.RunCommand) ([]string, error) {
	if len(c.Files) == 0 {
		return st.commandLine(c.ShellDependantCmdLine), nil
	}
	line := strings.TrimSpace(strings.Join(c.CmdLine, " "))
	f := c.Files[0]
	if c.PrependShell && len(c.Files) == 1 && heredocOnly(line, f.Name) {
		data := f.Data
		if f.Chomp {
			data = parser.ChompHeredocContent(data)
		}
		return append(st.shell(), data), nil
	}
	return nil, fmt.Errorf("%w: RUN with here-documents other than a single script", errdefs.ErrNotImplemented)
}

// heredocOnly tells whether line is nothing but the here-document name
// ("<<EOF", "<<-EOF", quoted).
func heredocOnly(line, name string) bool {
	rest, ok := strings.CutPrefix(line, "<<")
	if !ok {
		return false
	}
	rest = strings.TrimPrefix(rest, "-")
	rest = strings.Trim(rest, `"'`)
	return rest == name
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
