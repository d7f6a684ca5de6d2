package specgen

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Numbers are the field numbers already published, by message path ("RunInstancesRequest",
// "DescribeClustersResponse.Nested") and field name. Generate keeps them, so a spec update never
// renumbers a field (which would break every deployed client): a new field takes the next free number
// and a removed field's number is reserved.
type Numbers map[string]*MessageNumbers

// MessageNumbers are one message's field numbers and reserved numbers.
type MessageNumbers struct {
	Fields   map[string]int
	Reserved []int
}

var (
	messageLineRE  = regexp.MustCompile(`^\s*message (\w+) \{$`)
	fieldLineRE    = regexp.MustCompile(`^\s*(?:optional |repeated )?(?:[\w.]+|map<[\w.]+, [\w.]+>) (\w+) = (\d+)[ ;\[]`)
	reservedLineRE = regexp.MustCompile(`^\s*reserved ([\d, ]+);$`)
)

// ParseNumbers reads the field numbers of a proto file written by Generate (and formatted by buf).
func ParseNumbers(src []byte, into Numbers) error {
	var stack []string // message path segments; "" for other blocks (services, options)
	path := func() string {
		var segs []string
		for _, s := range stack {
			if s == "" {
				return ""
			}
			segs = append(segs, s)
		}
		return strings.Join(segs, ".")
	}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		trim := strings.TrimSpace(text)
		if strings.HasPrefix(trim, "//") {
			continue
		}
		if m := messageLineRE.FindStringSubmatch(text); m != nil {
			stack = append(stack, m[1])
			continue
		}
		p := path()
		if p != "" {
			if m := fieldLineRE.FindStringSubmatch(text); m != nil {
				n, _ := strconv.Atoi(m[2])
				mn := into.message(p)
				if _, dup := mn.Fields[m[1]]; dup {
					return fmt.Errorf("specgen: line %d: field %s.%s appears twice", line, p, m[1])
				}
				mn.Fields[m[1]] = n
			} else if m := reservedLineRE.FindStringSubmatch(text); m != nil {
				mn := into.message(p)
				for _, f := range strings.Split(m[1], ",") {
					n, err := strconv.Atoi(strings.TrimSpace(f))
					if err != nil {
						return fmt.Errorf("specgen: line %d: bad reserved number %q", line, f)
					}
					mn.Reserved = append(mn.Reserved, n)
				}
			}
		}
		// Blocks: a line ending in "{" opens one (message handled above), a line starting with "}"
		// closes one. Field options in [...] and one-line option blocks do neither.
		switch {
		case strings.HasSuffix(trim, "{"):
			stack = append(stack, "")
		case strings.HasPrefix(trim, "}"):
			if len(stack) == 0 {
				return fmt.Errorf("specgen: line %d: unbalanced }", line)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("specgen: read proto: %w", err)
	}
	if len(stack) != 0 {
		return fmt.Errorf("specgen: unterminated block %q", path())
	}
	return nil
}

func (n Numbers) message(path string) *MessageNumbers {
	mn := n[path]
	if mn == nil {
		mn = &MessageNumbers{Fields: map[string]int{}}
		n[path] = mn
	}
	return mn
}

// assign numbers m's fields (already sorted by name): the published number when there is one, else
// the next number after every number the message ever used. It returns the numbers to reserve: those
// published for fields that are gone.
func (n Numbers) assign(path string, fields []*field) []int {
	prev := n[path]
	if prev == nil {
		prev = &MessageNumbers{Fields: map[string]int{}}
	}
	for _, fl := range fields {
		fl.number = 0 // field values may be shared between messages (the <Action>All requests)
	}
	used := map[int]bool{}
	next := 1
	for _, r := range prev.Reserved {
		used[r] = true
		next = max(next, r+1)
	}
	for _, num := range prev.Fields {
		next = max(next, num+1)
	}
	for _, fl := range fields {
		if num, ok := prev.Fields[fl.name]; ok && !used[num] {
			fl.number = num
			used[num] = true
		}
	}
	for _, fl := range fields {
		if fl.number == 0 {
			for used[next] {
				next++
			}
			fl.number = next
			used[next] = true
		}
	}
	reserved := append([]int(nil), prev.Reserved...)
	for name, num := range prev.Fields {
		still := false
		for _, fl := range fields {
			still = still || fl.name == name
		}
		if !still {
			reserved = append(reserved, num)
		}
	}
	sort.Ints(reserved)
	return reserved
}
