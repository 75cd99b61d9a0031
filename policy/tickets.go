package policy

import "regexp"

var projectRe = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,31}$`)

// ValidProjectKey reports whether s is a JIRA project key, such as OPS.
func ValidProjectKey(s string) bool { return projectRe.MatchString(s) }

// TicketKeys returns the JIRA issue keys in message, in order of first
// appearance, without duplicates. A key is a project (an upper-case letter,
// then upper-case letters, digits or _) , a dash and a number not starting
// with 0, standing as a word of its own. With projects set, only keys of
// those projects count.
func TicketKeys(message string, projects []string) []string {
	var out []string
	for i := 0; i < len(message); i++ {
		c := message[i]
		if c < 'A' || c > 'Z' || (i > 0 && isWord(message[i-1])) {
			continue
		}
		j := i + 1
		for j < len(message) && (message[j] >= 'A' && message[j] <= 'Z' || message[j] >= '0' && message[j] <= '9' || message[j] == '_') {
			j++
		}
		if j-i > 32 || j+1 >= len(message) || message[j] != '-' || message[j+1] < '1' || message[j+1] > '9' {
			i = j - 1
			continue
		}
		k := j + 1
		for k < len(message) && message[k] >= '0' && message[k] <= '9' {
			k++
		}
		if k-j-1 > 10 || (k < len(message) && isWord(message[k])) {
			i = k - 1
			continue
		}
		key, proj := message[i:k], message[i:j]
		i = k - 1
		if len(projects) > 0 && !contains(projects, proj) {
			continue
		}
		if !contains(out, key) {
			out = append(out, key)
		}
	}
	return out
}

func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
