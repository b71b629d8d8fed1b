package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"berth.dev/cli/config"
	berthregistry "berth.dev/registry"
)

// configFile loads config.json from --config, $DOCKER_CONFIG or ~/.docker:
// the file the docker CLI uses, with its credential helpers.
func (c *CLI) configFile() (*berthregistry.DockerConfig, error) {
	return berthregistry.LoadDockerConfig(filepath.Join(config.Dir(c.configDir, c.getenv), config.FileName))
}

// configFormat returns a format setting of config.json ("imagesFormat"),
// or "" when there is none or the file cannot be read.
func (c *CLI) configFormat(key string) string {
	f, err := c.configFile()
	if err != nil {
		return ""
	}
	return f.String(key)
}

// registryAuth returns the X-Registry-Auth value for ref's registry from
// config.json, or "" when berth has no login for it.
func (c *CLI) registryAuth(ref reference.Named) (string, error) {
	cfg, err := c.configFile()
	if err != nil {
		fmt.Fprintf(c.errOut, "WARNING: Error loading config file: %v\n", err)
		return "", nil
	}
	key := config.ServerKey(reference.Domain(ref))
	creds, err := cfg.Get(key)
	if err != nil {
		fmt.Fprintf(c.errOut, "WARNING: %v\n", err)
		return "", nil
	}
	if creds.Empty() {
		return "", nil
	}
	return encodeAuth(registry.AuthConfig{
		Username:      creds.Username,
		Password:      creds.Password,
		IdentityToken: creds.IdentityToken,
		ServerAddress: key,
	})
}

// encodeAuth is the X-Registry-Auth encoding: base64url of the JSON.
func encodeAuth(a registry.AuthConfig) (string, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

func (c *CLI) loginCommand() *cobra.Command {
	var opts loginOptions
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Long:  "Defaults to Docker Hub if no server is specified.",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.server = args[0]
			}
			return c.login(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.username, "username", "u", "", "Username")
	cmd.Flags().StringVarP(&opts.password, "password", "p", "", "Password or Personal Access Token (PAT)")
	cmd.Flags().BoolVar(&opts.passwordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

type loginOptions struct {
	server, username, password string
	passwordStdin              bool
}

func (c *CLI) login(ctx context.Context, opts loginOptions) error {
	if opts.password != "" {
		fmt.Fprintln(c.errOut, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
		if opts.passwordStdin {
			return errors.New("--password and --password-stdin are mutually exclusive")
		}
	}
	if opts.passwordStdin {
		if opts.username == "" {
			return errors.New("Must provide --username with --password-stdin")
		}
		b, err := io.ReadAll(c.in)
		if err != nil {
			return err
		}
		opts.password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	key := config.ServerKey(opts.server)
	cfg, err := c.configFile()
	if err != nil {
		return err
	}
	if opts.username == "" && opts.password == "" {
		if creds, err := cfg.Get(key); err == nil && !creds.Empty() {
			fmt.Fprintln(c.out, "Authenticating with existing credentials...")
			err := c.authenticate(ctx, cfg, key, creds)
			if err == nil || client.IsErrConnectionFailed(err) {
				return err
			}
			fmt.Fprintf(c.errOut, "Login did not succeed, error: %v\n", err)
		}
	}
	if err := c.promptCredentials(&opts); err != nil {
		return err
	}
	return c.authenticate(ctx, cfg, key, berthregistry.AuthConfig{Username: opts.username, Password: opts.password})
}

// promptCredentials asks for the user name and password that the flags
// did not give. Like docker it refuses when stdin is not a terminal.
func (c *CLI) promptCredentials(opts *loginOptions) error {
	if opts.username != "" && opts.password != "" {
		return nil
	}
	if !isTerminal(c.in) {
		return errors.New("Error: Cannot perform an interactive login from a non TTY device")
	}
	if opts.username == "" {
		fmt.Fprint(c.out, "Username: ")
		u, err := readLine(c.in)
		if err != nil {
			return err
		}
		if opts.username = strings.TrimSpace(u); opts.username == "" {
			return errors.New("Error: Non-null Username Required")
		}
	}
	if opts.password == "" {
		fmt.Fprint(c.out, "Password: ")
		p, err := readSecret(c.in, c.out)
		if err != nil {
			return err
		}
		if opts.password = p; p == "" {
			return errors.New("Error: Password Required")
		}
	}
	return nil
}

// authenticate checks credentials with the daemon (which asks the
// registry) and stores them in config.json.
func (c *CLI) authenticate(ctx context.Context, cfg *berthregistry.DockerConfig, key string, creds berthregistry.AuthConfig) error {
	api, err := c.client(ctx)
	if err != nil {
		return err
	}
	res, err := api.RegistryLogin(ctx, client.RegistryLoginOptions{
		Username:      creds.Username,
		Password:      creds.Password,
		IdentityToken: creds.IdentityToken,
		ServerAddress: key,
	})
	if err != nil {
		return err
	}
	if res.Auth.IdentityToken != "" {
		creds.Password, creds.IdentityToken = "", res.Auth.IdentityToken
	}
	if err := cfg.Store(key, creds); err != nil {
		return fmt.Errorf("Error saving credentials: %w", err)
	}
	if !cfg.HasHelper(key) {
		fmt.Fprintf(c.errOut, "\nWARNING! Your credentials are stored unencrypted in '%s'.\n"+
			"Configure a credential helper to remove this warning. See\n"+
			"https://docs.docker.com/go/credential-store/\n\n", cfg.Path())
	}
	fmt.Fprintln(c.out, "Login Succeeded")
	return nil
}

func (c *CLI) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Long:  "If no server is specified, the default is defined by the daemon.",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			return c.logout(server)
		},
	}
}

func (c *CLI) logout(server string) error {
	key := config.ServerKey(server)
	cfg, err := c.configFile()
	if err != nil {
		return err
	}
	// Docker 28 prints this whether or not there was a login.
	fmt.Fprintf(c.out, "Removing login credentials for %s\n", key)
	return cfg.Erase(key)
}
