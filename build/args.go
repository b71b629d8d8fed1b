package build

import (
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// sourceDateEpochArg is the build arg that fixes the build's time.
const sourceDateEpochArg = "SOURCE_DATE_EPOCH"

// builtinArgs may be given without an ARG and are never reported as
// unused; the proxy ones reach RUN without appearing in its history.
var builtinArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true, sourceDateEpochArg: true,
}

// buildArgs are the --build-arg values and the ARGs declared before the
// first FROM (meta args), with the names an ARG declared.
type buildArgs struct {
	options    map[string]*string
	meta       map[string]string
	metaKeys   []string
	referenced map[string]bool
}

func newBuildArgs(options map[string]*string) *buildArgs {
	return &buildArgs{options: options, meta: map[string]string{}, referenced: map[string]bool{}}
}

// fromOptions returns the --build-arg value of name, if one was given.
func (a *buildArgs) fromOptions(name string) (string, bool) {
	v, ok := a.options[name]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// metaEnv is the environment FROM lines and meta ARGs expand with.
func (a *buildArgs) metaEnv() shell.EnvGetter {
	env := make([]string, 0, len(a.metaKeys))
	for _, k := range a.metaKeys {
		env = append(env, k+"="+a.meta[k])
	}
	return shell.EnvsFromSlice(env)
}

// addMeta declares the meta args of an ARG before the first FROM.
func (a *buildArgs) addMeta(c *instructions.ArgCommand, escape rune) error {
	lex := shell.NewLex(escape)
	for _, kv := range c.Args {
		a.referenced[kv.Key] = true
		v, ok := a.fromOptions(kv.Key)
		if !ok {
			if kv.Value == nil {
				continue
			}
			r, err := lex.ProcessWordWithMatches(*kv.Value, a.metaEnv())
			if err != nil {
				return err
			}
			v = r.Result
		}
		if _, seen := a.meta[kv.Key]; !seen {
			a.metaKeys = append(a.metaKeys, kv.Key)
		}
		a.meta[kv.Key] = v
	}
	return nil
}

// expandMeta expands word with the meta args (FROM lines, COPY --from).
func (a *buildArgs) expandMeta(word string, escape rune) (string, error) {
	r, err := shell.NewLex(escape).ProcessWordWithMatches(word, a.metaEnv())
	return r.Result, err
}

// unused lists the --build-arg names no ARG declared, sorted.
func (a *buildArgs) unused() []string {
	var names []string
	for k := range a.options {
		if !a.referenced[k] && !builtinArgs[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

// stageArgs are the ARGs a stage declared, in order, with their values
// (a declared ARG without a value has none and is not in RUN's env).
type stageArgs struct {
	keys   []string
	values map[string]*string
}

// declare adds the ARG name with its default (already expanded): the
// --build-arg value wins, then the default, then a meta arg's value.
func (s *stageArgs) declare(a *buildArgs, name string, def *string) {
	a.referenced[name] = true
	var v *string
	if o, ok := a.fromOptions(name); ok {
		v = &o
	} else if def != nil {
		d := *def
		v = &d
	} else if m, ok := a.meta[name]; ok {
		v = &m
	}
	if s.values == nil {
		s.values = map[string]*string{}
	}
	if _, seen := s.values[name]; !seen {
		s.keys = append(s.keys, name)
	}
	s.values[name] = v
}

// inEffect are the "k=v" of declared args with values that the config's
// env does not override, in declaration order.
func (s *stageArgs) inEffect(env []string) []string {
	set := map[string]bool{}
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		set[k] = true
	}
	var out []string
	for _, k := range s.keys {
		if v := s.values[k]; v != nil && !set[k] {
			out = append(out, k+"="+*v)
		}
	}
	return out
}

// expandEnv is what words of a stage expand with: its args, overridden
// by the config's env.
func (s *stageArgs) expandEnv(env []string) shell.EnvGetter {
	var all []string
	for _, k := range s.keys {
		if v := s.values[k]; v != nil {
			all = append(all, k+"="+*v)
		}
	}
	return shell.EnvsFromSlice(append(all, env...))
}

func (s *stageArgs) clone() stageArgs {
	c := stageArgs{keys: append([]string(nil), s.keys...), values: map[string]*string{}}
	for k, v := range s.values {
		c.values[k] = v
	}
	return c
}
