package policy

import (
	"regexp"
	"strings"
)

var (
	projectRe = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,31}$`)
	anyKeyRe  = regexp.MustCompile(`\b[A-Z][A-Z0-9_]{0,31}-[1-9][0-9]{0,9}\b`)
)

// TicketKeys returns the JIRA issue keys in message, in order of first
// appearance, without duplicates. With projects set, only keys of those
// projects count; otherwise any key-shaped word does.
func TicketKeys(message string, projects []string) []string {
	var out []string
	for _, k := range anyKeyRe.FindAllString(message, -1) {
		if len(projects) > 0 {
			proj, _, _ := strings.Cut(k, "-")
			ok := false
			for _, p := range projects {
				if p == proj {
					ok = true
					break
				}
			}
			if !ok {
				continue
			}
		}
		dup := false
		for _, o := range out {
			if o == k {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, k)
		}
	}
	return out
}
