package etf_test

import (
	"fmt"
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
)

type Point struct {
	_    etf.TupleTag `erl:"point"`
	X, Y int
}

type Base struct {
	ID      int64
	Created string `erl:"created_at,omitempty"`
}

type Item struct {
	Name  string
	Count int
}

type Order struct {
	Base
	UserID   uint32
	Customer string   `erl:"customer,atom"`
	Note     string   `erl:"note,charlist"`
	Tags     []string `erl:",omitempty"`
	Items    []Item
	Where    *Point
	Raw      []byte
	Extra    etf.Term
	Scores   map[string]float64
	Flags    [2]bool
	Secret   string `erl:"-"`
	private  int
	Ratio    float32
	Big      *big.Int
	Pid      etf.Pid
	Optional *int
}

func TestMarshalUnmarshal(t *testing.T) {
	a := func(s string) etf.Atom { return etf.Atom(s) }
	pid := etf.Pid{Node: "n@h", ID: 1}
	in := Order{
		Base:     Base{ID: 7},
		UserID:   42,
		Customer: "acme",
		Note:     "hi",
		Items:    []Item{{Name: "nut", Count: 3}},
		Where:    &Point{X: 1, Y: -2},
		Raw:      []byte{1, 2},
		Extra:    etf.Tuple{a("any"), int64(1)},
		Scores:   map[string]float64{"b": 2, "a": 1.5},
		Flags:    [2]bool{true, false},
		Secret:   "s",
		private:  1,
		Ratio:    0.5,
		Big:      new(big.Int).Lsh(big.NewInt(1), 70),
		Pid:      pid,
	}
	term, err := etf.Marshal(in)
	require.NoError(t, err)
	want := etf.Map{
		{Key: a("big"), Value: new(big.Int).Lsh(big.NewInt(1), 70)},
		{Key: a("customer"), Value: a("acme")},
		{Key: a("extra"), Value: etf.Tuple{a("any"), int64(1)}},
		{Key: a("flags"), Value: etf.List{a("true"), a("false")}},
		{Key: a("id"), Value: int64(7)},
		{Key: a("items"), Value: etf.List{etf.Map{{Key: a("count"), Value: int64(3)}, {Key: a("name"), Value: []byte("nut")}}}},
		{Key: a("note"), Value: etf.String("hi")},
		{Key: a("optional"), Value: a("undefined")},
		{Key: a("pid"), Value: pid},
		{Key: a("ratio"), Value: 0.5},
		{Key: a("raw"), Value: []byte{1, 2}},
		{Key: a("scores"), Value: etf.Map{{Key: []byte("a"), Value: 1.5}, {Key: []byte("b"), Value: 2.0}}},
		{Key: a("user_id"), Value: int64(42)},
		{Key: a("where"), Value: etf.Tuple{a("point"), int64(1), int64(-2)}},
	}
	assert.Equal(t, want, term)
	assert.Equal(t, `#{big => 1180591620717411303424,customer => acme,extra => {any,1},flags => [true,false],id => 7,`+
		`items => [#{count => 3,name => <<"nut">>}],note => "hi",optional => undefined,pid => <n@h.1.0>,ratio => 0.5,`+
		`raw => <<1,2>>,scores => #{<<"a">> => 1.5,<<"b">> => 2.0},user_id => 42,where => {point,1,-2}}`, etf.Format(term))

	// Through the wire and back.
	b, err := etf.Append(nil, term)
	require.NoError(t, err)
	decoded, _, err := etf.Decode(b)
	require.NoError(t, err)
	var out Order
	require.NoError(t, etf.Unmarshal(decoded, &out))
	in.Secret, in.private = "", 0
	assert.Equal(t, in, out)
}

func TestUnmarshalErrors(t *testing.T) {
	a := func(s string) etf.Atom { return etf.Atom(s) }
	items := etf.List{}
	for i := range 4 {
		var count etf.Term = int64(i)
		if i == 3 {
			count = a("three")
		}
		items = append(items, etf.Map{{Key: a("name"), Value: []byte("x")}, {Key: a("count"), Value: count}})
	}
	var o Order
	err := etf.Unmarshal(etf.Map{{Key: a("items"), Value: items}}, &o)
	var ue *etf.UnmarshalError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, ".items[3].count", ue.Path)
	assert.EqualError(t, err, "etf: unmarshal .items[3].count: want integer, got atom")

	cases := []struct {
		term etf.Term
		into any
		msg  string
	}{
		{int64(300), new(uint8), "overflows uint8"},
		{int64(-1), new(uint), "overflows uint"},
		{new(big.Int).Lsh(big.NewInt(1), 64), new(int64), "overflows int64"},
		{1e300, new(float32), "overflows float32"},
		{a("maybe"), new(bool), "want true or false, got atom"},
		{etf.Tuple{a("pt"), int64(1), int64(2)}, new(Point), "want tag point"},
		{etf.Tuple{a("point"), int64(1)}, new(Point), "want a tuple of 3 elements"},
		{etf.Map{}, new(Point), "want tuple, got map"},
		{etf.List{int64(1)}, new([2]int), "list of 1 elements"},
		{[]byte("x"), new([]int), "want list, got binary"},
		{etf.ImproperList{Elems: []etf.Term{int64(1)}, Tail: a("t")}, new([]int), "got improper list"},
		{etf.List{int64(-1)}, new(string), "[0]: want character code"},
		{etf.Map{{Key: int64(1), Value: int64(2)}}, new(map[string]int), "[1]: want binary, charlist or atom, got integer"},
		{int64(1), new(chan int), "cannot unmarshal into Go type chan int"},
		{int64(1), new(etf.Atom), "want atom, got integer"},
	}
	for _, c := range cases {
		err := etf.Unmarshal(c.term, c.into)
		require.ErrorAs(t, err, &ue, "%v into %T", c.term, c.into)
		assert.Contains(t, err.Error(), c.msg)
	}
	assert.Error(t, etf.Unmarshal(int64(1), nil))
	var x int
	assert.Error(t, etf.Unmarshal(int64(1), x))
}

func TestUnmarshalLenient(t *testing.T) {
	var s string
	for _, in := range []etf.Term{[]byte("héllo"), etf.Atom("héllo"), etf.List{int64('h'), int64(0xE9), int64('l'), int64('l'), int64('o')}, "héllo"} {
		require.NoError(t, etf.Unmarshal(in, &s))
		assert.Equal(t, "héllo", s)
	}
	var f float64
	require.NoError(t, etf.Unmarshal(int64(3), &f))
	assert.Equal(t, 3.0, f)
	p := &Item{Name: "keep"}
	require.NoError(t, etf.Unmarshal(etf.Atom("undefined"), &p))
	assert.Nil(t, p)
	var it Item
	require.NoError(t, etf.Unmarshal(etf.Map{{Key: []byte("name"), Value: etf.String("n")}, {Key: etf.Atom("unknown"), Value: int64(1)}}, &it))
	assert.Equal(t, Item{Name: "n"}, it)
	var anyv any
	require.NoError(t, etf.Unmarshal(etf.Tuple{int64(1)}, &anyv))
	assert.Equal(t, etf.Tuple{int64(1)}, anyv)
	var l etf.List
	require.NoError(t, etf.Unmarshal(etf.String("ab"), &l))
	assert.Equal(t, etf.List{int64('a'), int64('b')}, l)
	var m map[int]string
	require.NoError(t, etf.Unmarshal(etf.Map{{Key: int64(1), Value: []byte("one")}}, &m))
	assert.Equal(t, map[int]string{1: "one"}, m)
}

func TestMarshalErrors(t *testing.T) {
	_, err := etf.Marshal(struct{ C chan int }{})
	var me *etf.MarshalError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, ".c", me.Path)
	_, err = etf.Marshal(map[string]float64{"x": math.NaN()})
	require.ErrorAs(t, err, &me)
	assert.Equal(t, `[<<"x">>]`, me.Path)
	_, err = etf.Marshal(struct {
		A string `erl:",atom"`
	}{A: string(make([]byte, 300))})
	require.ErrorAs(t, err, &me)
}

func TestMarshalOmitEmptyAndUntaggedTuple(t *testing.T) {
	type pair struct {
		_    etf.TupleTag
		K    string `erl:",atom"`
		V    int
		Skip int `erl:"-"`
	}
	term, err := etf.Marshal([]pair{{K: "a", V: 1}})
	require.NoError(t, err)
	assert.Equal(t, "[{a,1}]", etf.Format(term))
	var back []pair
	require.NoError(t, etf.Unmarshal(term, &back))
	assert.Equal(t, []pair{{K: "a", V: 1}}, back)

	term, err = etf.Marshal(Base{})
	require.NoError(t, err)
	assert.Equal(t, "#{id => 0}", etf.Format(term))
	term, err = etf.Marshal(Base{Created: "today"})
	require.NoError(t, err)
	assert.Equal(t, `#{created_at => <<"today">>,id => 0}`, etf.Format(term))
}

func ExampleMarshal() {
	type Point struct {
		_    etf.TupleTag `erl:"point"`
		X, Y int
	}
	type Shape struct {
		Name   string
		Kind   string `erl:"kind,atom"`
		Points []Point
		Label  string `erl:"label,omitempty"`
	}
	term, _ := etf.Marshal(Shape{Name: "tri", Kind: "polygon", Points: []Point{{X: 0, Y: 0}, {X: 1, Y: 2}}})
	fmt.Println(etf.Format(term))
	// Output: #{kind => polygon,name => <<"tri">>,points => [{point,0,0},{point,1,2}]}
}

func ExampleUnmarshal() {
	type User struct {
		UserID int
		Name   string
		Roles  []string `erl:"roles"`
	}
	term, _ := etf.Parse(`#{user_id => 7, name => <<"Ann">>, roles => [admin, "dev"]}`)
	var u User
	if err := etf.Unmarshal(term, &u); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%+v\n", u)

	bad, _ := etf.Parse(`#{user_id => seven}`)
	fmt.Println(etf.Unmarshal(bad, &u))
	// Output:
	// {UserID:7 Name:Ann Roles:[admin dev]}
	// etf: unmarshal .user_id: want integer, got atom
}

func ExampleFormat() {
	term, _ := etf.Parse(`{ok, [<<"é"/utf8>>, "text", [1,2], 'Quoted', 1.0e10, #{b => 2, a => 1}]}`)
	fmt.Println(etf.Format(term))
	// Output: {ok,[<<"é"/utf8>>,"text",[1,2],'Quoted',1.0e10,#{a => 1,b => 2}]}
}

func ExampleParse() {
	term, err := etf.Parse(`{hello, <<"x">>, [1,2,3], #{k => v}}.`)
	fmt.Printf("%#v %v\n", term, err)
	_, err = etf.Parse(`{hello, World}`)
	fmt.Println(err)
	// Output:
	// etf.Tuple{"hello", []uint8{0x78}, "\x01\x02\x03", etf.Map{etf.MapEntry{Key:"k", Value:"v"}}} <nil>
	// etf: syntax error at line 1, column 9: variable World is not a term
}
