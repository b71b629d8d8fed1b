package engine

import (
	"errors"
	"reflect"
	"testing"

	"berth.dev/image"
	"berth.dev/internal/errdefs"
)

func TestApplyChange(t *testing.T) {
	var cfg image.Config
	for _, ch := range []string{
		`CMD ["sh", "-c", "echo hi"]`,
		`ENTRYPOINT /bin/init --flag`,
		`ENV A=1 B="two words"`,
		`ENV A 3`,
		`LABEL org.example.x=y`,
		`EXPOSE 80 53/udp`,
		`VOLUME ["/data"]`,
		`USER 1000:1000`,
		`WORKDIR /srv`,
		`STOPSIGNAL SIGINT`,
	} {
		if err := applyChange(&cfg, ch); err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
	}
	c := cfg.Config
	if !reflect.DeepEqual(c.Cmd, []string{"sh", "-c", "echo hi"}) || !reflect.DeepEqual(c.Entrypoint, []string{"/bin/sh", "-c", "/bin/init --flag"}) {
		t.Errorf("cmd %q entrypoint %q", c.Cmd, c.Entrypoint)
	}
	if !reflect.DeepEqual(c.Env, []string{"A=3", "B=two words"}) {
		t.Errorf("env %q", c.Env)
	}
	if c.Labels["org.example.x"] != "y" || c.User != "1000:1000" || c.WorkingDir != "/srv" || c.StopSignal != "SIGINT" {
		t.Errorf("config %+v", c)
	}
	if _, ok := c.ExposedPorts["80/tcp"]; !ok || len(c.ExposedPorts) != 2 {
		t.Errorf("ports %v", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("volumes %v", c.Volumes)
	}
	for _, bad := range []string{"RUN make", "ENV", `ENV A="x`, "LABEL =v"} {
		if err := applyChange(&cfg, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v, want invalid argument", bad, err)
		}
	}
}
