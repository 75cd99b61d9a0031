module github.com/gitmon-dev/gitmon

go 1.26

require (
	github.com/Masterminds/semver/v3 v3.5.0
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3
	go.yaml.in/yaml/v3 v3.0.6
)

require golang.org/x/text v0.14.0 // indirect
