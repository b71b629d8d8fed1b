package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"berth.dev/cli/format"
)

// inspectKind is one kind of object inspect knows: how to fetch one by
// name as raw JSON, and the typed structure templates see first.
type inspectKind struct {
	name  string
	fetch func(ctx context.Context, api *client.Client, ref string, size bool) ([]byte, error)
	typed func() any
}

func containerKind() inspectKind {
	return inspectKind{
		name: "container",
		fetch: func(ctx context.Context, api *client.Client, ref string, size bool) ([]byte, error) {
			res, err := api.ContainerInspect(ctx, ref, client.ContainerInspectOptions{Size: size})
			return res.Raw, err
		},
		typed: func() any { return &container.InspectResponse{} },
	}
}

func imageKind(opts ...client.ImageInspectOption) inspectKind {
	return inspectKind{
		name: "image",
		fetch: func(ctx context.Context, api *client.Client, ref string, _ bool) ([]byte, error) {
			var raw bytes.Buffer
			_, err := api.ImageInspect(ctx, ref, append(opts, client.ImageInspectWithRawResponse(&raw))...)
			return raw.Bytes(), err
		},
		typed: func() any { return &image.InspectResponse{} },
	}
}

func volumeKind() inspectKind {
	return inspectKind{
		name: "volume",
		fetch: func(ctx context.Context, api *client.Client, ref string, _ bool) ([]byte, error) {
			res, err := api.VolumeInspect(ctx, ref, client.VolumeInspectOptions{})
			return res.Raw, err
		},
		typed: func() any { return &volume.Volume{} },
	}
}

func networkKind() inspectKind {
	return inspectKind{
		name: "network",
		fetch: func(ctx context.Context, api *client.Client, ref string, _ bool) ([]byte, error) {
			res, err := api.NetworkInspect(ctx, ref, client.NetworkInspectOptions{})
			return res.Raw, err
		},
		typed: func() any { return &network.Inspect{} },
	}
}

// objectInspectCommand is the top-level "berth inspect": containers,
// images, networks and volumes, tried in that order unless --type says
// which.
func (c *CLI) objectInspectCommand() *cobra.Command {
	var tmpl, kind string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on berth objects",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var kinds []inspectKind
			switch kind {
			case "":
				kinds = []inspectKind{containerKind(), imageKind(), networkKind(), volumeKind()}
			case "container":
				kinds = []inspectKind{containerKind()}
			case "image":
				kinds = []inspectKind{imageKind()}
			case "volume":
				kinds = []inspectKind{volumeKind()}
			case "network":
				kinds = []inspectKind{networkKind()}
			default:
				return fmt.Errorf("%q is not a valid value for --type", kind)
			}
			return c.inspectObjects(cmd.Context(), args, tmpl, size, kinds, kind == "")
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", formatHelpNoTable)
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	cmd.Flags().StringVar(&kind, "type", "", "Only inspect objects of the given type")
	return cmd
}

func (c *CLI) containerInspectCommand() *cobra.Command {
	var tmpl string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.inspectObjects(cmd.Context(), args, tmpl, size, []inspectKind{containerKind()}, false)
		},
	}
	cmd.Flags().StringVarP(&tmpl, "format", "f", "", formatHelpNoTable)
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes")
	return cmd
}

// inspectObjects prints each object's JSON, as one indented array or
// through a template once per object. Objects not found are reported
// after the others, with exit status 1; a search over several kinds words
// that as docker does ("No such object").
func (c *CLI) inspectObjects(ctx context.Context, names []string, tmplText string, size bool, kinds []inspectKind, anyKind bool) error {
	var tmpl *template.Template
	if tmplText != "" && tmplText != "json" {
		t, err := format.NewTemplate(tmplText)
		if err != nil {
			return err
		}
		tmpl = t
	}
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	var raws []json.RawMessage
	var failures []string
	var out bytes.Buffer
	for _, name := range names {
		raw, kind, err := fetchAny(ctx, api, name, size, kinds)
		if err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			if anyKind && isNotFound(err) {
				failures = append(failures, "Error: No such object: "+name)
			} else {
				failures = append(failures, err.Error())
			}
			continue
		}
		if tmpl == nil {
			var b bytes.Buffer
			json.Compact(&b, raw)
			raws = append(raws, json.RawMessage(b.Bytes()))
			continue
		}
		if err := executeTemplate(tmpl, &out, raw, kind.typed()); err != nil {
			return err
		}
		out.WriteByte('\n')
	}
	if tmpl == nil {
		if raws == nil {
			raws = []json.RawMessage{}
		}
		b, err := json.MarshalIndent(raws, "", "    ")
		if err != nil {
			return err
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	if _, err := c.out.Write(out.Bytes()); err != nil {
		return err
	}
	if len(failures) > 0 {
		return &StatusError{Status: strings.Join(failures, "\n"), Code: 1}
	}
	return nil
}

// fetchAny tries each kind in turn; the first that knows the name wins.
func fetchAny(ctx context.Context, api *client.Client, name string, size bool, kinds []inspectKind) ([]byte, inspectKind, error) {
	var lastErr error
	for _, k := range kinds {
		raw, err := k.fetch(ctx, api, name, size)
		if err == nil {
			return raw, k, nil
		}
		if !isNotFound(err) {
			return nil, k, err
		}
		lastErr = err
	}
	return nil, inspectKind{}, lastErr
}

// executeTemplate runs an inspect template over an object, first as the
// API's typed structure, then, if the template does not fit it, over the
// raw JSON (numbers kept exact), so that JSON names ({{.Id}}) resolve.
func executeTemplate(tmpl *template.Template, out *bytes.Buffer, raw []byte, typed any) error {
	if err := json.Unmarshal(raw, typed); err == nil {
		var b bytes.Buffer
		if err := tmpl.Execute(&b, typed); err == nil {
			out.Write(b.Bytes())
			return nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if err := tmpl.Execute(out, generic); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	return nil
}
