module github.com/gitmon-dev/gitmon

go 1.26

require (
	github.com/Masterminds/semver/v3 v3.5.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)
