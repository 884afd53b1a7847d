package main

import (
	"context"
	"fmt"
	"io"

	"github.com/proxychain/proxychain/internal/convert"
	"github.com/proxychain/proxychain/proxy/config"
)

// convertCommand prints a V2Ray client config as a ProxyChain and the Secret holding its
// credentials, ready for kubectl apply -f -. What is left out goes to stderr, so stdout
// stays pipeable.
func convertCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("convert", stderr)
	var paths configFiles
	fs.Var(&paths, "f", "V2Ray config file (JSON; comments and trailing commas allowed); repeat to merge several, as run's -c")
	name := fs.String("name", "", "name of the ProxyChain (required)")
	namespace := fs.String("namespace", "", "namespace of both objects (default: kubectl's)")
	secretName := fs.String("secret-name", "", `name of the Secret holding the credentials (default "<name>-credentials")`)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: proxychain convert -f v2ray.json --name NAME [--namespace NS] [--secret-name NAME]")
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), "Prints a Secret with the config's credentials and a ProxyChain referencing it, as YAML:")
		fmt.Fprintln(fs.Output(), "  proxychain convert -f v2ray.json --name us-exit | kubectl apply -f -")
		fmt.Fprintln(fs.Output(), "Outbounds keep their order (the first is the default) and routing rules carry over;")
		fmt.Fprintln(fs.Output(), "inbounds and log are left out, since the sidecar brings its own.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(paths) == 0 {
		return fmt.Errorf("%w: -f v2ray.json is required", errUsage)
	}
	if *name == "" {
		return fmt.Errorf("%w: --name is required", errUsage)
	}
	cfg, warnings, err := config.Load(paths...)
	printWarnings(stderr, warnings)
	if err != nil {
		return err
	}
	res, err := convert.Convert(cfg, convert.Options{Name: *name, Namespace: *namespace, SecretName: *secretName})
	if err != nil {
		return err
	}
	printNotes(stderr, res.Notes)
	printWarnings(stderr, res.Warnings)
	_, err = stdout.Write(res.YAML)
	return err
}

func printNotes(w io.Writer, notes []config.Warning) {
	for _, note := range notes {
		fmt.Fprintf(w, "note: %s\n", note)
	}
}
