package app

import (
	"github.com/gitmon-dev/gitmon/internal/config"
	"github.com/gitmon-dev/gitmon/monitor"
)

// remote is what monitor needs of a configured repository: plain values,
// its secrets already read.
func remote(rc *config.Repository) monitor.Remote {
	return monitor.Remote{
		URL:            rc.URL,
		Insecure:       rc.Insecure,
		CAFile:         rc.CAFile,
		Username:       rc.Auth.Username.Value(),
		Password:       rc.Auth.Password.Value(),
		SSHKey:         rc.Auth.SSHKey.Value(),
		SSHKeyFile:     rc.Auth.SSHKey.File,
		KnownHostsFile: rc.Auth.KnownHostsFile,
		Descriptors:    rc.Descriptors,
	}
}
